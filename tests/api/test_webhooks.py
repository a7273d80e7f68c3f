"""Webhooks against a real HTTP receiver on loopback."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from config.celery import app as celery_app
from crm.services import customer_create
from crm.webhooks.models import WebhookDelivery, WebhookSubscription
from crm.webhooks.services import (
    MAX_ATTEMPTS,
    webhook_deliveries_retry_due,
    webhook_delivery_attempt,
)
from segments.models import SegmentEvent
from segments.webhooks import segment_events_emit
from tests.crm.factories import CustomerFactory
from tests.segments.factories import SegmentFactory

from .conftest import errors_of
from .test_receipts import sale


class Receiver:
    """An HTTP server that records each POST and answers with scripted statuses."""

    def __init__(self, statuses):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"try again")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def eager_tasks():
    """Run the delivery task in-process when the transaction commits."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture(autouse=True)
def local_receivers(settings):
    # The receivers of these tests listen on 127.0.0.1; the refusal of private
    # addresses has tests of its own below.
    settings.LOYALIST_WEBHOOK_ALLOW_PRIVATE = True


def subscribe(client, url, events, **extra):
    response = client.post(
        "/api/v1/webhooks/",
        {"name": "CRM sync", "url": url, "events": events, **extra},
        format="json",
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_receipt_created_is_delivered_signed_after_commit(
    marketer, till, products, eager_tasks, django_capture_on_commit_callbacks
):
    with Receiver([200]) as receiver:
        subscription = subscribe(marketer, receiver.url, ["receipt.created"])
        with django_capture_on_commit_callbacks(execute=True):
            receipt = till.post("/api/v1/receipts/", sale(), format="json").json()

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    expected = hmac.new(subscription["secret"].encode(), body, hashlib.sha256)
    assert headers["X-Loyalist-Signature"] == f"sha256={expected.hexdigest()}"
    assert headers["X-Loyalist-Event"] == "receipt.created"
    payload = json.loads(body)
    assert payload["event"] == "receipt.created"
    assert payload["data"][0]["id"] == receipt["id"]
    assert payload["data"][0]["total"] == receipt["total"]
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered"
    assert delivery.attempt_log[0]["status_code"] == 200


def test_failed_delivery_is_retried_with_backoff_and_logged(
    marketer, api_admin, eager_tasks, django_capture_on_commit_callbacks
):
    with Receiver([500, 200]) as receiver:
        subscription = subscribe(marketer, receiver.url, ["customer.created"])
        with django_capture_on_commit_callbacks(execute=True):
            api_admin.post(
                "/api/v1/customers/", {"email": "new@example.com"}, format="json"
            )
        delivery = WebhookDelivery.objects.get()
        assert delivery.status == "pending"
        assert delivery.last_status_code == 500
        first_retry_at = delivery.next_attempt_at

        # Not yet due: nothing is sent.
        assert webhook_deliveries_retry_due(now=timezone.now()) == 0
        assert (
            webhook_deliveries_retry_due(now=first_retry_at + timedelta(seconds=1)) == 1
        )

    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert [a["status_code"] for a in delivery.attempt_log] == [500, 200]
    assert 25 <= (first_retry_at - delivery.created_at).total_seconds() <= 35
    assert receiver.requests[0][1] == receiver.requests[1][1]
    log = marketer.get(f"/api/v1/webhooks/{subscription['id']}/deliveries/").json()
    assert log["results"][0]["attempts"] == 2


def test_delivery_gives_up_after_the_last_attempt(marketer, store):
    with Receiver([503] * MAX_ATTEMPTS) as receiver:
        subscribe(marketer, receiver.url, ["segment.entered"])
        customer = CustomerFactory()
        segment = SegmentFactory(slug="vip")
        segment_events_emit(
            events=[
                SegmentEvent(
                    segment=segment,
                    customer=customer,
                    kind="entered",
                    cause="contact",
                    occurred_at=timezone.now(),
                )
            ]
        )
        later = timezone.now()
        for _ in range(MAX_ATTEMPTS):
            later += timedelta(days=1)
            webhook_deliveries_retry_due(now=later)

    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "failed"
    assert delivery.attempts == MAX_ATTEMPTS
    assert len(receiver.requests) == MAX_ATTEMPTS
    payload = json.loads(receiver.requests[0][1])["data"][0]
    assert payload["segment"] == "vip"
    assert payload["customer"] == {"id": customer.pk, "email": customer.email}


def test_segment_subscriptions_can_be_limited_to_some_segments(marketer):
    subscribe(
        marketer, "http://127.0.0.1:9/hook", ["segment.entered"], segments=["vip"]
    )
    customer = CustomerFactory()
    events = [
        SegmentEvent(
            segment=SegmentFactory(slug=slug),
            customer=customer,
            kind="entered",
            cause="recompute",
            occurred_at=timezone.now(),
        )
        for slug in ("vip", "lapsed")
    ]

    assert segment_events_emit(events=events) == 1
    body = json.loads(WebhookDelivery.objects.get().body)
    assert [item["segment"] for item in body["data"]] == ["vip"]


def test_segment_events_read_the_subscriptions_once_for_both_kinds(
    marketer, django_assert_num_queries
):
    subscribe(
        marketer, "http://127.0.0.1:9/hook", ["segment.entered", "segment.exited"]
    )
    customer = CustomerFactory()
    events = [
        SegmentEvent(
            segment=SegmentFactory(slug=f"s-{kind}"),
            customer=customer,
            kind=kind,
            cause="recompute",
            occurred_at=timezone.now(),
        )
        for kind in ("entered", "exited")
    ]

    # The subscriptions' events, the subscription, slugs, emails, a delivery per kind.
    with django_assert_num_queries(6):
        assert segment_events_emit(events=events) == 2

    assert sorted(WebhookDelivery.objects.values_list("event", flat=True)) == [
        "segment.entered",
        "segment.exited",
    ]


def test_no_subscription_means_no_delivery_and_no_event_reads(
    django_assert_max_num_queries, db
):
    with django_assert_max_num_queries(1):
        assert segment_events_emit(events=SegmentEvent.objects.all()) == 0


def test_subscriptions_are_for_marketers_and_admins_only(till, reader, marketer):
    body = {"name": "x", "url": "https://example.com/h", "events": ["receipt.created"]}

    assert till.post("/api/v1/webhooks/", body, format="json").status_code == 403
    assert reader.get("/api/v1/webhooks/").status_code == 403
    invalid = marketer.post(
        "/api/v1/webhooks/",
        {**body, "events": ["nope"], "url": "ftp://x"},
        format="json",
    )
    assert sorted(errors_of(invalid)) == [
        ("events[0]", "invalid_choice"),
        ("url", "invalid"),
    ]


def test_secret_rotation_and_unsubscribe(marketer):
    subscription = subscribe(marketer, "https://example.com/h", ["receipt.created"])
    url = f"/api/v1/webhooks/{subscription['id']}/"

    rotated = marketer.post(f"{url}rotate-secret/").json()
    assert rotated["secret"] != subscription["secret"]
    assert marketer.delete(url).status_code == 204
    assert marketer.get(url).status_code == 404


# Private addresses ------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:192.168.0.1]/hook",
    ],
)
def test_a_url_on_a_private_address_is_refused_with_the_address(
    marketer, settings, url
):
    settings.LOYALIST_WEBHOOK_ALLOW_PRIVATE = False

    response = marketer.post(
        "/api/v1/webhooks/",
        {"name": "Internal", "url": url, "events": ["receipt.created"]},
        format="json",
    )

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert (error["field"], error["code"]) == ("url", "private_address")
    assert "not a public address" in error["message"]
    assert not WebhookSubscription.objects.exists()


def test_delivery_checks_the_address_it_connects_to(marketer, store, settings):
    # Subscribed while allowed (or while the name resolved elsewhere): the
    # delivery itself refuses to send anything to a private address.
    with Receiver([200]) as receiver:
        subscription = subscribe(marketer, receiver.url, ["customer.created"])
        settings.LOYALIST_WEBHOOK_ALLOW_PRIVATE = False
        customer_create(email="new@example.com", home_store=store)
        delivery = WebhookDelivery.objects.get(subscription_id=subscription["id"])

        assert webhook_delivery_attempt(delivery_id=delivery.pk) == "pending"

    delivery.refresh_from_db()
    assert receiver.requests == []
    assert delivery.last_status_code is None
    assert "not a public address" in delivery.attempt_log[-1]["error"]


def test_public_addresses_are_public():
    from crm.webhooks.guard import is_public

    assert is_public("93.184.215.14")
    assert is_public("2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    for address in (
        "127.0.0.1",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "::1",
        "fe80::1",
        "169.254.169.254",
        "0.0.0.0",  # noqa: S104 - an address to check, not one to bind
        "224.0.0.1",
        "100.64.0.1",
        "::ffff:127.0.0.1",
    ):
        assert not is_public(address), address


# Consent -----------------------------------------------------------------------------


def test_an_ad_platform_hears_only_of_customers_who_consented_to_social_ads(
    marketer, store
):
    from crm.services import consent_record

    segment = SegmentFactory(slug="vip")
    agreed, withdrew, never = CustomerFactory.create_batch(3)
    for customer, granted in ((agreed, True), (withdrew, True), (withdrew, False)):
        consent_record(
            customer=customer,
            channel="social_ads",
            granted=granted,
            source="api",
            wording="Show me ads on social media",
            recorded_at=timezone.now() + timedelta(seconds=0 if granted else 1),
        )
    ads = subscribe(
        marketer,
        "https://ads.example.com/audiences",
        ["segment.entered"],
        consent_channel="social_ads",
    )
    warehouse = subscribe(marketer, "https://dw.example.com/in", ["segment.entered"])
    assert ads["consent_channel"] == "social_ads"
    assert warehouse["consent_channel"] == ""

    segment_events_emit(
        events=[
            SegmentEvent(
                segment=segment,
                customer=customer,
                kind="entered",
                cause="contact",
                occurred_at=timezone.now(),
            )
            for customer in (agreed, withdrew, never)
        ]
    )

    def customers_sent_to(subscription):
        return [
            item["customer"]["id"]
            for delivery in WebhookDelivery.objects.filter(
                subscription_id=subscription["id"]
            )
            for item in json.loads(delivery.body)["data"]
        ]

    assert customers_sent_to(ads) == [agreed.pk]
    assert sorted(customers_sent_to(warehouse)) == sorted(
        [agreed.pk, withdrew.pk, never.pk]
    )


def test_receipts_of_customers_without_consent_do_not_reach_the_ad_platform(
    marketer, till, products, store, django_capture_on_commit_callbacks
):
    ads = subscribe(
        marketer,
        "https://ads.example.com/conversions",
        ["receipt.created"],
        consent_channel="social_ads",
    )
    customer = CustomerFactory(home_store=store)

    till.post("/api/v1/receipts/", sale(customer=customer.pk), format="json")

    assert not WebhookDelivery.objects.filter(subscription_id=ads["id"]).exists()
