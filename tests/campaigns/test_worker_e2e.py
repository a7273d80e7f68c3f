"""End to end with real Celery workers, Redis and an SMTP server: a segment entry
becomes an email in seconds, and a worker killed mid-send duplicates nothing."""

import asyncio
import os
import signal
import time
from datetime import timedelta

import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, Delivery
from campaigns.services.planning import run_plan
from campaigns.services.sending import leases_expire
from campaigns.tasks import channel_send_task
from crm.models import Consent
from crm.services import LineInput, consent_record, receipt_record
from segments.models import CustomerSegmentState
from segments.services import segment_create
from tests.campaigns.conftest import SmtpServer, campaign_make, message_make
from tests.crm.factories import CustomerFactory
from tests.workers import wait_for, worker_start, worker_stop

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.REDIS_URL or connection.vendor != "postgresql",
        reason="needs PostgreSQL and Redis (make test)",
    ),
]


class SlowSmtpServer(SmtpServer):
    """Takes `delay` seconds to accept each message, like a busy relay."""

    delay = 0.0

    async def handle_DATA(self, server, session, envelope) -> str:
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def smtp():
    server = SlowSmtpServer()
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def worker_env(smtp):
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    yield {
        "EMAIL_URL": f"smtp://{smtp.host}:{smtp.port}",
        "CAMPAIGN_BATCH_SIZE": "10",
        "CAMPAIGN_RATE_EMAIL": "100000",
        "PUBLIC_BASE_URL": "https://shop.example",
    }
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


def consenting_customer(**fields):
    customer = CustomerFactory(**fields)
    consent_record(
        customer=customer,
        channel="email",
        granted=True,
        source=Consent.Source.STORE,
        wording="News by email",
    )
    return customer


def members_set(segment, customers) -> None:
    """Make `customers` the segment's members, as a recompute would."""
    CustomerSegmentState.objects.bulk_create(
        [CustomerSegmentState(customer=c, segment_ids=[segment.pk]) for c in customers],
        update_conflicts=True,
        unique_fields=["customer"],
        update_fields=["segment_ids"],
    )


def test_segment_entry_becomes_an_email_within_seconds(
    worker_env, smtp, store, products
):
    segment = segment_create(
        name="Repeat buyers", rules={"field": "orders", "op": "gte", "value": 2}
    )
    campaign = campaign_make(
        kind=Campaign.Kind.TRIGGERED,
        status=Campaign.Status.ACTIVE,
        channels=["email"],
        holdout_percent=0,
        trigger_segment=segment,
    )
    campaign.include_segments.add(segment)
    message_make(campaign, subject="Thanks for coming back, {{ first_name }}")
    customer = consenting_customer(first_name="Noor")
    receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
    )
    worker = worker_start(**worker_env)
    try:
        started = time.monotonic()
        receipt_record(
            store=store,
            customer=customer,
            payment_method="card",
            lines=[LineInput("BAG-1", 1)],
        )
        assert wait_for(lambda: smtp.messages, timeout=60), "no email arrived"
        elapsed = time.monotonic() - started
    finally:
        worker_stop(worker)

    assert smtp.messages[0]["Subject"] == "Thanks for coming back, Noor"
    assert smtp.messages[0]["To"] == customer.email
    assert segment.pk in CustomerSegmentState.objects.get(customer=customer).segment_ids
    # Generous for a loaded CI machine; `bench campaigns` measures the p95.
    assert elapsed < 20
    assert Delivery.objects.get(campaign=campaign).status == Delivery.Status.SENT


def test_a_worker_killed_mid_send_duplicates_nothing_and_forgets_nothing(
    worker_env, smtp
):
    smtp.delay = 0.02
    segment = segment_create(
        name="Everyone", rules={"field": "orders", "op": "gte", "value": 0}
    )
    customers = [consenting_customer() for _ in range(120)]
    members_set(segment, customers)
    campaign = campaign_make(
        status=Campaign.Status.SENDING, channels=["email"], holdout_percent=0
    )
    campaign.include_segments.add(segment)
    message_make(campaign)
    run = CampaignRun.objects.create(
        campaign=campaign, key="send", due_at=timezone.now() - timedelta(seconds=1)
    )
    run_plan(run=run)
    assert run.deliveries.count() == 120

    worker = worker_start(**worker_env)
    try:
        channel_send_task.delay("email")
        assert wait_for(lambda: len(smtp.messages) >= 25, timeout=60)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        worker_stop(worker)
    at_kill = len(smtp.messages)
    assert Delivery.objects.filter(status=Delivery.Status.SENDING).exists()

    # The lease passes; those rows are unknown, the rest goes with a new worker.
    leases_expire(now=timezone.now() + timedelta(hours=1))
    worker = worker_start(**worker_env)
    try:
        channel_send_task.delay("email")
        assert wait_for(
            lambda: (
                not Delivery.objects.filter(
                    status__in=["planned", "deferred", "sending"]
                ).exists()
            ),
            timeout=60,
        )
    finally:
        worker_stop(worker)

    ids = [m["Message-ID"] for m in smtp.messages]
    assert len(ids) == len(set(ids)), "a message reached the SMTP server twice"
    statuses = dict(
        Delivery.objects.values_list("status").annotate(n=Count("pk")).order_by()
    )
    assert set(statuses) <= {"sent", "unknown"}
    assert statuses["sent"] + statuses.get("unknown", 0) == 120
    # Every message the server holds belongs to a sent or an unknown delivery,
    # and every sent delivery is at the server.
    sent_ids = set(
        Delivery.objects.filter(status="sent").values_list(
            "provider_message_id", flat=True
        )
    )
    assert sent_ids <= set(ids)
    assert len(ids) >= at_kill


def test_the_tick_on_a_worker_plans_each_due_campaign_and_sends_it_once(
    worker_env, smtp
):
    from campaigns.services.campaigns import campaign_schedule
    from campaigns.tasks import campaigns_tick_task

    segment = segment_create(
        name="Everyone", rules={"field": "orders", "op": "gte", "value": 0}
    )
    customers = [consenting_customer() for _ in range(3)]
    members_set(segment, customers)
    for slug in ("first", "second"):
        campaign = campaign_make(slug=slug, channels=["email"], holdout_percent=0)
        campaign.include_segments.add(segment)
        message_make(campaign)
        campaign_schedule(campaign=campaign, user=None)

    worker = worker_start(**worker_env)
    try:
        campaigns_tick_task.delay()
        assert wait_for(lambda: len(smtp.messages) >= 6, timeout=60)
        # A second tick finds nothing due and sends nothing again.
        campaigns_tick_task.delay()
        time.sleep(2)
    finally:
        worker_stop(worker)

    assert len(smtp.messages) == 6
    assert Delivery.objects.filter(status=Delivery.Status.SENT).count() == 6
