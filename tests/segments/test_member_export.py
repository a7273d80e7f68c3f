"""A segment's members as CSV: the admin action, the change page's link, the API."""

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.urls import reverse

from crm.models import Channel, Consent, MemberExport
from crm.roles import API_READ_ONLY, CLERKS, MARKETERS, roles_sync
from tests.api.conftest import token_client
from tests.conftest import user_in_group
from tests.crm.factories import CustomerFactory
from tests.segments.factories import SegmentFactory, membership_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def roles():
    roles_sync()


@pytest.fixture
def marketer():
    return user_in_group("marketer", MARKETERS, is_staff=True)


@pytest.fixture
def segment():
    segment = SegmentFactory(name="Big spenders", slug="big-spenders")
    ann = CustomerFactory(email="ann@example.com", first_name="Ann")
    bob = CustomerFactory(email="bob@example.com", first_name="Bob")
    for customer in (ann, bob):
        membership_create(segment=segment, customer=customer)
    Consent.objects.create(
        customer=ann,
        channel=Channel.EMAIL,
        status=Consent.Status.GRANTED,
        source=Consent.Source.STORE,
        wording="Offers, please",
    )
    CustomerFactory(email="not.a.member@example.com")
    return segment


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_marketer_exports_a_segment_from_the_admin_action(client, marketer, segment):
    client.force_login(marketer)

    response = client.post(
        reverse("admin:segments_segment_changelist"),
        {"action": "export_members_csv", ACTION_CHECKBOX_NAME: [segment.pk]},
    )

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "big-spenders-members-" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert sorted((row[1], row[7]) for row in rows[1:]) == [
        ("Ann", "ann@example.com"),
        ("Bob", ""),
    ]
    log = MemberExport.objects.get()
    assert (log.exported_by, log.label, log.rows, log.object_id) == (
        marketer,
        "Big spenders",
        2,
        segment.pk,
    )
    assert log.finished_at is not None


def test_the_action_exports_one_segment_at_a_time(client, marketer, segment):
    client.force_login(marketer)
    other = SegmentFactory()

    response = client.post(
        reverse("admin:segments_segment_changelist"),
        {"action": "export_members_csv", ACTION_CHECKBOX_NAME: [segment.pk, other.pk]},
        follow=True,
    )

    assert "Choose one to export" in response.text
    assert not MemberExport.objects.exists()


def test_the_change_page_links_to_the_export(client, marketer, segment):
    client.force_login(marketer)
    export_url = reverse("admin:segments_segment_export", args=[segment.pk])

    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk]))
    response = client.get(export_url)

    assert export_url in page.text
    assert len(csv_rows(response)) == 3


def test_staff_without_the_export_permission_get_403_and_no_link(client, segment):
    clerk = user_in_group("clerk-staff", CLERKS, is_staff=True)
    clerk.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_segment", "change_segment"])
    )
    client.force_login(clerk)

    page = client.get(reverse("admin:segments_segment_change", args=[segment.pk]))
    response = client.get(reverse("admin:segments_segment_export", args=[segment.pk]))
    action = client.post(
        reverse("admin:segments_segment_changelist"),
        {"action": "export_members_csv", ACTION_CHECKBOX_NAME: [segment.pk]},
    )

    assert page.status_code == 200
    assert "member-export-link" not in page.text
    assert response.status_code == 403
    # Django hides an action the user may not run: the post is refused.
    assert not action.get("Content-Type", "").startswith("text/csv")
    assert not MemberExport.objects.exists()


def api_url(segment) -> str:
    return f"/api/v1/segments/{segment.slug}/members/export/"


def test_marketer_exports_a_segment_over_the_api(segment):
    api = token_client(user_in_group("marketer-token", MARKETERS))

    response = api.get(api_url(segment), HTTP_ACCEPT="text/csv")

    assert response.status_code == 200
    rows = csv_rows(response)
    assert rows[0][:2] == ["Customer id", "First name"]
    assert sorted(row[7] for row in rows[1:]) == ["", "ann@example.com"]
    assert MemberExport.objects.get().rows == 2


def test_the_api_leaves_out_the_channels_not_asked_for(segment):
    api = token_client(user_in_group("marketer-token", MARKETERS))

    response = api.get(api_url(segment), {"channel": "sms"})

    rows = csv_rows(response)
    assert rows[0][7:] == ["Phone (SMS)"]
    assert "ann@example.com" not in str(rows)
    assert MemberExport.objects.get().channels == ["sms"]


def test_an_unknown_channel_is_a_400(segment):
    api = token_client(user_in_group("marketer-token", MARKETERS))

    response = api.get(api_url(segment), {"channel": "fax"})

    assert response.status_code == 400
    assert not MemberExport.objects.exists()


@pytest.mark.parametrize("group", [CLERKS, API_READ_ONLY])
def test_clerks_and_read_only_tokens_may_not_export(segment, group):
    api = token_client(user_in_group("no-export", group))

    response = api.get(api_url(segment))

    assert response.status_code == 403
    assert not MemberExport.objects.exists()


def test_the_api_export_takes_as_many_queries_for_3_as_for_50_members(
    django_assert_num_queries,
):
    api = token_client(user_in_group("marketer-token", MARKETERS))
    small = SegmentFactory(slug="small")
    large = SegmentFactory(slug="large")
    for customer in CustomerFactory.create_batch(50):
        membership_create(segment=large, customer=customer)
        if small.size < 3:
            membership_create(segment=small, customer=customer)
    csv_rows(api.get(api_url(small)))  # content types and permissions cached

    sizes = []
    for segment in (small, large):
        api = token_client(api.user)
        # Token and user, groups, permissions, the segment, the log's insert,
        # the rows and the log's update (each write in a savepoint).
        with django_assert_num_queries(12):
            sizes.append(len(csv_rows(api.get(api_url(segment)))) - 1)

    assert sizes == [3, 50]
