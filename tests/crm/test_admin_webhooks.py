"""The admin's webhook pages: subscriptions through the services, the log read-only."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from crm.webhooks.models import WebhookDelivery, WebhookSubscription
from crm.webhooks.services import webhook_subscription_create
from segments.services import segment_create

from .test_admin import admin_url, get_counted, messages_of, staff_with

pytestmark = pytest.mark.django_db

# A public address written as a number: the URL check needs no DNS lookup.
PUBLIC_URL = "https://93.184.216.34/loyalist"


def subscription_form(**overrides) -> dict:
    return {
        "name": "Ad platform",
        "url": PUBLIC_URL,
        "events": ["segment.entered", "segment.exited"],
        "consent_channel": "social_ads",
        "is_active": "on",
        **overrides,
    }


@pytest.fixture
def subscription(admin_user):
    return webhook_subscription_create(
        name="Warehouse", url=PUBLIC_URL, events=["receipt.created"], owner=admin_user
    )


def deliveries(subscription, count: int, status=WebhookDelivery.Status.PENDING):
    WebhookDelivery.objects.bulk_create(
        WebhookDelivery(
            subscription=subscription,
            event="receipt.created",
            body="{}",
            status=status,
        )
        for _ in range(count)
    )


def test_a_subscription_added_in_the_admin_goes_through_the_service(
    admin_client, admin_user
):
    segment_create(
        name="Lapsed", slug="lapsed", rules={"field": "orders", "op": "eq", "value": 0}
    )

    response = admin_client.post(
        admin_url("webhooksubscription", "add"),
        subscription_form(segments=["lapsed"]),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    subscription = WebhookSubscription.objects.get()
    assert subscription.events == ["segment.entered", "segment.exited"]
    assert subscription.segments == ["lapsed"]
    assert subscription.consent_channel == "social_ads"
    assert subscription.owner == admin_user
    assert len(subscription.secret) == 64
    # The secret the receiver needs is on the subscription's page.
    page = admin_client.get(admin_url("webhooksubscription", "change", subscription.pk))
    assert subscription.secret in page.content.decode()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"url": "http://10.1.2.3/hook"}, "url", "not a public address"),
        ({"events": []}, "events", "This field is required."),
        ({"events": ["receipt.voided"]}, "events", "not one of the available"),
    ],
    ids=["private-address", "no-events", "unknown-event"],
)
def test_a_refused_subscription_is_a_form_error_and_nothing_is_stored(
    admin_client, settings, overrides, field, message
):
    settings.LOYALIST_WEBHOOK_ALLOW_PRIVATE = False

    response = admin_client.post(
        admin_url("webhooksubscription", "add"), subscription_form(**overrides)
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert message in " ".join(errors[field])
    assert not WebhookSubscription.objects.exists()


def test_changing_a_subscription_updates_it_and_keeps_its_secret(
    admin_client, subscription
):
    secret = subscription.secret

    response = admin_client.post(
        admin_url("webhooksubscription", "change", subscription.pk),
        subscription_form(
            name="Warehouse", events=["receipt.created", "customer.created"]
        ),
    )

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.events == ["customer.created", "receipt.created"]
    assert subscription.secret == secret


def test_actions_rotate_the_secret_and_pause_and_resume(admin_client, subscription):
    secret = subscription.secret
    url = admin_url("webhooksubscription", "changelist")

    def act(action: str):
        return admin_client.post(
            url, {"action": action, ACTION_CHECKBOX_NAME: [subscription.pk]}
        )

    rotated = act("secret_rotate")
    subscription.refresh_from_db()
    assert subscription.secret != secret
    assert "1 subscriptions have a new secret" in " ".join(messages_of(rotated))

    act("deactivate")
    subscription.refresh_from_db()
    assert subscription.is_active is False

    act("activate")
    subscription.refresh_from_db()
    assert subscription.is_active is True


def test_deleting_a_subscription_removes_its_delivery_log(admin_client, subscription):
    deliveries(subscription, 3)
    confirm = admin_client.get(
        admin_url("webhooksubscription", "delete", subscription.pk)
    )
    assert "Webhook deliveries: 3" in confirm.content.decode()

    response = admin_client.post(
        admin_url("webhooksubscription", "delete", subscription.pk), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not WebhookSubscription.objects.exists()
    assert not WebhookDelivery.objects.exists()


def test_the_changelist_counts_waiting_and_abandoned_deliveries(
    admin_client, subscription, admin_user
):
    other = webhook_subscription_create(
        name="Shop", url=PUBLIC_URL, events=["customer.created"], owner=admin_user
    )
    deliveries(subscription, 2)
    deliveries(subscription, 1, status=WebhookDelivery.Status.FAILED)
    deliveries(subscription, 4, status=WebhookDelivery.Status.DELIVERED)

    response = admin_client.get(admin_url("webhooksubscription", "changelist"))

    rows = {
        s.name: (s.pending_count, s.failed_count)
        for s in response.context["cl"].result_list
    }
    assert rows == {"Warehouse": (2, 1), other.name: (0, 0)}


# Session and user, the count, the page with the subscriptions' names (the filter).
DELIVERY_CHANGELIST_QUERIES = 5


@pytest.mark.parametrize("rows", [5, 40])
def test_the_delivery_log_is_read_only_and_its_queries_do_not_grow(
    admin_client, django_assert_max_num_queries, subscription, rows
):
    deliveries(subscription, rows)
    delivery = WebhookDelivery.objects.first()

    response = get_counted(
        admin_client,
        admin_url("webhookdelivery", "changelist")
        + f"?subscription__id__exact={subscription.pk}",
        django_assert_max_num_queries,
        DELIVERY_CHANGELIST_QUERIES,
    )

    assert len(response.context["cl"].result_list) == rows
    assert admin_client.get(admin_url("webhookdelivery", "add")).status_code == 403
    change = admin_client.get(admin_url("webhookdelivery", "change", delivery.pk))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert (
        admin_client.get(
            admin_url("webhookdelivery", "delete", delivery.pk)
        ).status_code
        == 403
    )


def test_staff_who_may_only_view_neither_act_nor_see_the_secret(client, subscription):
    staff_with(client, "view_webhooksubscription")
    secret = subscription.secret

    listing = client.get(admin_url("webhooksubscription", "changelist"))
    page = client.get(admin_url("webhooksubscription", "change", subscription.pk))
    client.post(
        admin_url("webhooksubscription", "changelist"),
        {"action": "secret_rotate", ACTION_CHECKBOX_NAME: [subscription.pk]},
    )

    assert listing.status_code == page.status_code == 200
    assert listing.context["action_form"] is None
    assert secret not in page.content.decode()
    subscription.refresh_from_db()
    assert subscription.secret == secret
