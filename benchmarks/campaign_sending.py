"""`bench campaigns --parts send,trigger`: real workers sending to a real SMTP server.

Both parts start two Celery worker processes on the bench database and Redis,
with EMAIL_URL pointing at an SMTP server (aiosmtpd) this process runs on
loopback, and read what that server received:

- send: a one-off email campaign planned for N customers, sent by the two
  workers as beat would start them (a tick a minute); messages per second from
  the first tick to the last message received, every Message-ID exactly once,
  and the workers' peak memory after a run of N / 4 and after one of N.
- trigger: customers tagged at a steady rate enter a segment that starts a
  triggered campaign; the time from each tag's commit to its message reaching
  the SMTP server (the segment evaluation included).
"""

import logging
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy

from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.models import Count
from django.test import override_settings
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, Delivery
from campaigns.services.campaigns import campaign_create, campaign_schedule
from campaigns.services.planning import run_plan
from campaigns.services.sending import DUE_STATUSES
from campaigns.tasks import campaigns_tick_task
from crm.models import Customer, Tag
from crm.querysets import channel_address
from crm.services import customer_update
from segments.models import Segment
from segments.services import segment_create

from .base import Timings, _free_port, table_vacuum
from .segments import Workers

TRIGGER_TAG = "bench-trigger"
NO_QUIET_HOURS = ("00:00", "00:00")
TICK_SECONDS = 60.0
MEMORY_GROWTH_MB = 20.0  # "flat": the larger run may add at most this to the peak

BODY_HTML = (
    "<html><body><p>Hello {{ first_name }},</p><p>This week's offers are in "
    'store.</p><a href="https://shop.example/offers">See the offers</a></body></html>'
)


@dataclass
class Received:
    at: float
    recipients: list[str]
    message_id: str


@dataclass
class SmtpSink:
    """An SMTP server (aiosmtpd) on loopback that keeps when each message came."""

    port: int = field(default_factory=_free_port)
    received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:
        headers = message_from_bytes(
            envelope.content.split(b"\r\n\r\n", 1)[0], policy=default_policy
        )
        with self._lock:
            self.received.append(
                Received(
                    time.time(),
                    list(envelope.rcpt_tos),
                    str(headers.get("Message-ID", "")),
                )
            )
        return "250 Message accepted for delivery"

    def start(self) -> None:
        try:
            from aiosmtpd.controller import Controller
        except ImportError as exc:
            raise CommandError(
                "The sending benches need aiosmtpd: `make install` (dev extras)."
            ) from exc
        # aiosmtpd logs every SMTP command (addresses included) at INFO.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def since(self, mark: int) -> list[Received]:
        with self._lock:
            return self.received[mark:]


def workers_start(sink: SmtpSink, *, email_rate: int) -> Workers:
    workers = Workers(
        2,
        env={
            "EMAIL_URL": f"smtp://127.0.0.1:{sink.port}",
            "CAMPAIGN_RATE_EMAIL": str(email_rate),
            "CAMPAIGN_QUIET_HOURS": ",".join(NO_QUIET_HOURS),
        },
    )
    workers.start()
    return workers


def _emailable():
    """Customers who may get email now: current grant and an address."""
    return (
        Customer.objects.filter(erased_at__isnull=True)
        .consented("email")
        .filter(channel_address("email"))
    )


def _message(slug: str) -> dict:
    return {
        "name": f"{slug}-email",
        "channel": "email",
        "subject": "This week at Loyalist",
        "body_text": "Hello {{ first_name }}, this week's offers are in store.",
        "body_html": BODY_HTML,
    }


# Sending ------------------------------------------------------------------------------


def _send_run(size: int, sink: SmtpSink, *, timeout: float) -> dict:
    """Plan a one-off email campaign for `size` customers and let the workers
    send it, a tick a minute as beat would."""
    slug = f"bench-send-{time.time_ns() % 10**9}"
    segments = list(Segment.objects.filter(slug__startswith="rfm-"))
    campaign = campaign_create(
        created_by=None,
        name=f"Bench send {size}",
        slug=slug,
        audience={"include_segments": segments},
        channels=["email"],
        messages=[_message(slug)],
        holdout_percent=0,
        frequency_cap=30_000,
    )
    with transaction.atomic():
        run = CampaignRun.objects.create(
            campaign=campaign, key="send", due_at=timezone.now()
        )
        customers = _emailable().order_by("?").values("pk")[:size]
        planned = run_plan(run=run, customer_ids=customers)
        Campaign.objects.filter(pk=campaign.pk).update(
            status=Campaign.Status.SENDING, next_run_at=None
        )
    # Statistics as autovacuum keeps them after the earlier runs' writes (the
    # send-time frequency check picks its index by them).
    table_vacuum(Delivery, analyze=True)
    rows = Delivery.objects.filter(run=run)
    due = rows.filter(status__in=(*DUE_STATUSES, Delivery.Status.SENDING))
    mark = len(sink.received)
    started = time.time()
    next_tick = started
    while due.exists():
        if time.time() >= next_tick:
            campaigns_tick_task.delay()
            next_tick += TICK_SECONDS
        if time.time() - started > timeout:
            raise CommandError(f"Sending {planned:,} messages took over {timeout} s.")
        time.sleep(0.2)
    got = sink.since(mark)
    ids = [item.message_id for item in got]
    last = max((item.at for item in got), default=started)
    counts = dict(
        rows.order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {
        "planned": planned,
        "received": len(got),
        "distinct_message_ids": len(set(ids)),
        "statuses": counts,
        "seconds": last - started,
        "rate": len(got) / (last - started) if got else 0.0,
    }


def send_measure(*, messages: int, email_rate: int, stdout, style) -> bool:
    """Two runs (messages / 4, then messages): rate, exactly-once, memory."""
    if _emailable().count() < messages:
        raise CommandError(
            f"Fewer than {messages:,} customers may get email: lower --messages."
        )
    sink = SmtpSink()
    sink.start()
    workers = workers_start(sink, email_rate=email_rate)
    try:
        with override_settings(CAMPAIGN_QUIET_HOURS=NO_QUIET_HOURS):
            small = _send_run(messages // 4, sink, timeout=max(120.0, messages / 50))
            peak_small = workers.peak_rss_mb()
            large = _send_run(messages, sink, timeout=max(120.0, messages / 50))
            peak_large = workers.peak_rss_mb()
    finally:
        workers.stop()
        sink.stop()
    ok = True
    for label, result in (("small", small), ("large", large)):
        stdout.write(
            f"  {label}: {result['planned']:,} planned, {result['received']:,} "
            f"received ({result['distinct_message_ids']:,} distinct Message-IDs) "
            f"in {result['seconds']:.1f} s = {result['rate']:,.0f}/s; "
            f"rows {result['statuses']}"
        )
        once = (
            result["received"]
            == result["distinct_message_ids"]
            == result["statuses"].get(Delivery.Status.SENT, 0)
            == result["planned"]
        )
        ok &= once
        if not once:
            stdout.write(style.ERROR("  exactly once: missed"))
    growth = max(peak_large) - max(peak_small)
    stdout.write(
        f"  worker peak RSS after {messages // 4:,}: {peak_small} MB; after "
        f"{messages:,} more: {peak_large} MB (growth {growth:.1f} MB)"
    )
    for label, met, target in (
        ("sending rate", large["rate"] >= 500, ">= 500/s with 2 workers"),
        ("worker memory flat", growth <= MEMORY_GROWTH_MB, f"<= +{MEMORY_GROWTH_MB}"),
    ):
        stdout.write(
            (style.SUCCESS if met else style.ERROR)(
                f"  {label}: {'met' if met else 'missed'} ({target})"
            )
        )
        ok &= met
    return ok


# Triggered ----------------------------------------------------------------------------


def _trigger_campaign() -> Campaign:
    Tag.objects.get_or_create(slug=TRIGGER_TAG, defaults={"name": TRIGGER_TAG})
    segment = Segment.objects.filter(slug=TRIGGER_TAG).first() or segment_create(
        name="Bench trigger",
        slug=TRIGGER_TAG,
        rules={"field": "tags", "op": "contains", "value": TRIGGER_TAG},
    )
    campaign = Campaign.objects.filter(slug=TRIGGER_TAG).first()
    if campaign is None:
        campaign = campaign_create(
            created_by=None,
            name="Bench trigger",
            slug=TRIGGER_TAG,
            kind=Campaign.Kind.TRIGGERED,
            audience={"include_segments": [segment]},
            channels=["email"],
            messages=[_message(TRIGGER_TAG)],
            holdout_percent=0,
            frequency_cap=30_000,
            trigger={"segment": segment, "delay_minutes": 0, "reentry_days": 1},
        )
    if campaign.status != Campaign.Status.ACTIVE:
        campaign = campaign_schedule(campaign=campaign, user=None)
    return campaign


def trigger_measure(
    *, rate: float, seconds: float, grace: float, stdout, style
) -> bool:
    """Tag `rate` customers a second for `seconds`; entry-to-SMTP latency."""
    total = int(rate * seconds)
    _trigger_campaign()
    customers = list(
        _emailable()
        .exclude(tags__slug=TRIGGER_TAG)
        .filter(tags__isnull=True)
        .order_by("?")
        .only("pk", "email")[:total]
    )
    if len(customers) < total:
        raise CommandError(f"Fewer than {total:,} untagged customers may get email.")
    committed: dict[str, float] = {}
    sink = SmtpSink()
    sink.start()
    workers = workers_start(sink, email_rate=1000)
    try:
        with override_settings(CAMPAIGN_QUIET_HOURS=NO_QUIET_HOURS):
            started = time.time()
            for number, customer in enumerate(customers):
                delay = started + number / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                customer_update(customer=customer, tags=[TRIGGER_TAG])
                committed[customer.email] = time.time()
            deadline = time.time() + grace
            while time.time() < deadline:
                arrived = {r for item in sink.since(0) for r in item.recipients}
                if set(committed) <= arrived:
                    break
                time.sleep(0.2)
    finally:
        workers.stop()
        sink.stop()
    first: dict[str, float] = {}
    for item in sink.since(0):
        for address in item.recipients:
            first.setdefault(address, item.at)
    samples = [
        (first[address] - at) * 1000
        for address, at in committed.items()
        if address in first
    ]
    lost = total - len(samples)
    duplicates = len(sink.received) - len(first)
    connection.close()
    if not samples:
        stdout.write(style.ERROR(f"  no message arrived of {total:,}"))
        return False
    timings = Timings(samples)
    stdout.write(
        f"  {total:,} entries at {rate:g}/s: tag commit to SMTP p50 "
        f"{timings.median:,.0f} ms, p95 {timings.p95:,.0f} ms, max "
        f"{max(samples):,.0f} ms; {lost} lost, {duplicates} duplicates"
    )
    met = timings.p95 < 5000 and lost == 0 and duplicates == 0
    stdout.write(
        (style.SUCCESS if met else style.ERROR)(
            f"  triggered p95: {'met' if met else 'missed'} (< 5,000 ms, none lost)"
        )
    )
    return met
