"""`manage.py campaigns_tick`: beat's minute on demand (a server without beat);
the tick hands each campaign's planning to a task of its own, and senders start
only for channels with something due."""

import io
import json
from datetime import timedelta

import pytest
import redis
from django.core.management import call_command
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.services.campaigns import campaign_schedule
from campaigns.tasks import campaigns_tick_task, triggers_consume_task
from segments.models import Segment
from tests.campaigns.conftest import (
    campaign_make,
    entry_make,
    message_make,
    triggered_make,
)
from tests.campaigns.test_sending import customers_in


@pytest.fixture(autouse=True)
def no_rate_limit(settings):
    settings.CAMPAIGN_RATE_LIMITS = {}


@pytest.fixture
def segment(db):
    return Segment.objects.create(name="Regulars", slug="regulars", rules={})


def tick() -> str:
    out = io.StringIO()
    call_command("campaigns_tick", stdout=out)
    return out.getvalue()


def test_a_campaign_scheduled_for_now_is_sent_by_one_tick_and_only_once(
    segment,
    smtp_server,
    eager_celery,
):
    customers_in(segment, 4)
    campaign = campaign_make(channels=["email"], holdout_percent=0)
    campaign.include_segments.add(segment)
    message_make(campaign)
    campaign_schedule(campaign=campaign, user=None)

    output = tick()

    assert len(smtp_server.messages) == 4
    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 4
    assert "sent 4" in output
    # A second tick finishes the run and sends nothing again.
    tick()
    assert len(smtp_server.messages) == 4
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT


@pytest.fixture
def broker(settings):
    """The test Redis as Celery's broker, emptied, with no worker reading it."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis (make test)")
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()


def queued(broker) -> list[tuple[str, str]]:
    """The tasks waiting in the default queue: (name, arguments), oldest first."""
    messages = [json.loads(raw) for raw in reversed(broker.lrange("celery", 0, -1))]
    return [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in messages]


def test_the_tick_starts_one_planning_task_per_due_campaign(segment, broker):
    customers_in(segment, 2)
    due = []
    for slug in ("first", "second"):
        campaign = campaign_make(slug=slug, channels=["email"], holdout_percent=0)
        campaign.include_segments.add(segment)
        message_make(campaign)
        campaign_schedule(campaign=campaign, user=None)
        due.append(campaign)
    later = campaign_make(
        slug="later",
        status=Campaign.Status.SCHEDULED,
        next_run_at=timezone.now() + timedelta(days=1),
    )

    campaigns_tick_task()

    # Planning is left to the workers, a task per campaign; nothing is due yet.
    assert queued(broker) == [
        ("campaigns.tasks.campaign_run_task", f"({c.pk},)") for c in due
    ]
    assert not Delivery.objects.exists()
    assert later.pk not in {c.pk for c in due}


def test_a_trigger_consume_starts_senders_only_for_channels_it_made_due(
    segment, broker, django_capture_on_commit_callbacks
):
    ann, bob = customers_in(segment, 2)
    now = timezone.now()
    for slug, delay in (("welcome", 0), ("follow-up", 60)):
        triggered_make(
            segment,
            slug=slug,
            trigger_delay_minutes=delay,
            trigger_read_from=now - timedelta(minutes=1),
        )
    entry_make(segment, ann, now)

    with django_capture_on_commit_callbacks(execute=True):
        triggers_consume_task()

    # Two rows planned, one due now (email), one in an hour: senders for email
    # only, not for the five channels.
    assert Delivery.objects.filter(customer=ann).count() == 2
    assert queued(broker) == [("campaigns.tasks.channel_send_task", "('email',)")] * 2

    broker.flushdb()
    with django_capture_on_commit_callbacks(execute=True):
        triggers_consume_task()
    assert queued(broker) == []
    assert not Delivery.objects.filter(customer=bob).exists()


def test_in_embedded_mode_one_failing_campaign_does_not_stop_the_others(
    segment, smtp_server, eager_celery
):
    customers_in(segment, 3)
    broken = campaign_make(
        slug="broken",
        kind=Campaign.Kind.RECURRING,
        status=Campaign.Status.ACTIVE,
        channels=["email"],
        recurrence="RRULE:FREQ=SOMETIMES",
        next_run_at=timezone.now() - timedelta(minutes=1),
    )
    broken.include_segments.add(segment)
    message_make(broken)
    campaign = campaign_make(slug="fine", channels=["email"], holdout_percent=0)
    campaign.include_segments.add(segment)
    message_make(campaign)
    campaign_schedule(campaign=campaign, user=None)

    tick()

    assert len(smtp_server.messages) == 3
    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 3
