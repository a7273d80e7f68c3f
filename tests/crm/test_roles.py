"""Every demo role against every admin page: what the README promises each login.

The walk covers every model the admin registers, so a new admin page (or a role that
loses a permission) shows up here rather than as a 403 in front of a marketer.
"""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from crm.demo.users import demo_users_ensure
from crm.roles import MARKETERS, roles_sync
from segments.models import Segment


@pytest.fixture
def demo_users(store):
    demo_users_ensure()
    users = get_user_model().objects
    return {
        "admin": users.get(username="admin"),
        "marketer": users.get(username="marketer"),
        "clerk": users.get(username=f"clerk-{store.code}"),
    }


def registered_models():
    return sorted(
        (model._meta.app_label, model._meta.model_name)
        for model in admin.site._registry
    )


def signed_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.parametrize(("app_label", "model_name"), registered_models())
def test_marketer_sees_exactly_the_admin_pages_the_role_allows(
    client, demo_users, app_label, model_name
):
    marketer = demo_users["marketer"]
    signed_in(client, marketer)

    changelist = client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))
    add = client.get(reverse(f"admin:{app_label}_{model_name}_add"))

    may_view = marketer.has_perm(f"{app_label}.view_{model_name}") or (
        marketer.has_perm(f"{app_label}.change_{model_name}")
    )
    assert changelist.status_code == (200 if may_view else 403)
    # Some models are written only by services, so even the admin may not add them.
    if not marketer.has_perm(f"{app_label}.add_{model_name}"):
        assert add.status_code == 403


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:index",
        "admin:segments_segment_changelist",
        "admin:segments_segment_add",
        "admin:personas_persona_changelist",
        "admin:personas_persona_add",
        "admin:crm_customer_changelist",
        "admin:crm_receipt_changelist",
    ],
)
def test_marketer_opens_the_pages_the_readme_promises(client, demo_users, url_name):
    signed_in(client, demo_users["marketer"])

    assert client.get(reverse(url_name)).status_code == 200


@pytest.mark.parametrize(
    "url_name",
    [
        "admin:auth_user_changelist",
        "admin:auth_group_changelist",
        "admin:crm_webhooksubscription_changelist",
        "admin:crm_webhooksubscription_add",
    ],
)
def test_marketer_does_not_touch_users_or_webhooks(client, demo_users, url_name):
    signed_in(client, demo_users["marketer"])

    assert client.get(reverse(url_name)).status_code == 403


def test_marketer_may_not_delete_customers_or_segments(client, demo_users, customer):
    marketer = demo_users["marketer"]
    segment = Segment.objects.first()
    signed_in(client, marketer)

    customer_delete = client.get(
        reverse("admin:crm_customer_delete", args=[customer.pk])
    )

    assert customer_delete.status_code == 403
    assert not marketer.has_perm("crm.delete_customer")
    assert not marketer.has_perm("segments.delete_segment")
    assert segment is not None
    assert (
        client.get(
            reverse("admin:segments_segment_delete", args=[segment.pk])
        ).status_code
        == 403
    )


def test_marketer_sees_the_customers_segments_on_the_customer_page(
    client, demo_users, customer
):
    signed_in(client, demo_users["marketer"])

    page = client.get(reverse("admin:crm_customer_change", args=[customer.pk]))

    assert page.status_code == 200
    # The segments panel lists the active segments with a link to why (or why not).
    assert Segment.objects.filter(is_active=True).first().name in page.text


def test_marketer_can_create_a_segment_in_the_admin(client, demo_users):
    signed_in(client, demo_users["marketer"])

    response = client.post(
        reverse("admin:segments_segment_add"),
        {
            "name": "Repeat buyers",
            "slug": "",
            "kind": "behavioural",
            "description": "",
            "is_active": "on",
            "query": "orders >= 2",
            "rules": "",
        },
    )

    assert response.status_code == 302
    assert Segment.objects.filter(name="Repeat buyers").exists()


def test_clerk_cannot_enter_the_admin(client, demo_users):
    signed_in(client, demo_users["clerk"])

    response = client.get(reverse("admin:index"))

    # Clerks are not staff: the admin sends them to its login page.
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


@pytest.mark.parametrize(("app_label", "model_name"), registered_models())
def test_admin_opens_every_changelist(client, demo_users, app_label, model_name):
    signed_in(client, demo_users["admin"])

    response = client.get(reverse(f"admin:{app_label}_{model_name}_changelist"))

    assert response.status_code == 200


def test_roles_sync_takes_away_a_permission_the_role_no_longer_has(demo_users):
    marketers = Group.objects.get(name=MARKETERS)
    marketers.permissions.add(Permission.objects.get(codename="delete_customer"))

    roles_sync()

    assert not marketers.permissions.filter(codename="delete_customer").exists()


def test_marketer_may_export_members_and_read_the_log_but_never_edit_it(
    client, demo_users
):
    marketer = demo_users["marketer"]
    signed_in(client, marketer)
    segment = Segment.objects.first()

    log = client.get(reverse("admin:crm_memberexport_changelist"))
    add = client.get(reverse("admin:crm_memberexport_add"))
    export = client.get(reverse("admin:segments_segment_export", args=[segment.pk]))

    assert marketer.has_perm("crm.add_memberexport")
    assert log.status_code == 200
    # Only an export writes the log; the admin has no add form for anyone.
    assert add.status_code == 403
    assert export.status_code == 200
    assert export["Content-Type"].startswith("text/csv")


def test_clerks_may_not_export_members(demo_users):
    clerk = demo_users["clerk"]

    assert not clerk.has_perm("crm.add_memberexport")
    assert not clerk.has_perm("crm.view_memberexport")
