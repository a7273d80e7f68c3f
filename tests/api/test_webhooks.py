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
from crm.webhooks.models import WebhookDelivery
from crm.webhooks.services import (
    MAX_ATTEMPTS,
    segment_events_emit,
    webhook_deliveries_retry_due,
)
from segments.models import SegmentEvent
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
