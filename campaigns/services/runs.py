"""Runs: beat's minute tick plans what is due; segment entries start triggered ones.

Schedules live in the database (`Campaign.next_run_at`, the triggered campaigns'
`trigger_cursor`), and a tick that fires twice plans nothing twice: a run's key is
unique per campaign and a delivery's per run.
"""

import logging
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from segments.models import SegmentEvent

from ..models import Campaign, CampaignRun, Delivery
from ..recurrence import next_occurrence, shop_zone
from .planning import run_plan

logger = logging.getLogger(__name__)


def _run_key(campaign: Campaign, due: datetime) -> str:
    if campaign.kind == Campaign.Kind.ONE_OFF:
        return "send"
    # In UTC: local wall times repeat when the clocks go back, and two
    # occurrences must never share a key.
    return due.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


@transaction.atomic
def campaign_run_due(
    *, campaign_id: int, now: datetime | None = None
) -> CampaignRun | None:
    """Plan the campaign's due run (one-off send, the recurrence's occurrence) and
    move its schedule on; None when nothing is due (any more)."""
    now = now or timezone.now()
    campaign = (
        Campaign.objects.select_for_update()
        .filter(
            pk=campaign_id,
            status__in=(Campaign.Status.SCHEDULED, Campaign.Status.ACTIVE),
            next_run_at__lte=now,
        )
        .exclude(kind=Campaign.Kind.TRIGGERED)
        .first()
    )
    if campaign is None:
        return None
    due = campaign.next_run_at
    run, _created = CampaignRun.objects.get_or_create(
        campaign=campaign, key=_run_key(campaign, due), defaults={"due_at": due}
    )
    run_plan(run=run)
    if campaign.kind == Campaign.Kind.ONE_OFF:
        campaign.status = Campaign.Status.SENDING
        campaign.next_run_at = None
    else:
        campaign.status = Campaign.Status.ACTIVE
        # Occurrences missed while beat was down are not sent late in a burst:
        # the next one is the first after now.
        campaign.next_run_at = next_occurrence(campaign.recurrence, max(due, now))
    campaign.save(update_fields=["status", "next_run_at", "updated_at"])
    return run


def runs_due(*, now: datetime | None = None) -> list[CampaignRun]:
    """Plan every due run."""
    now = now or timezone.now()
    ids = Campaign.objects.filter(
        status__in=(Campaign.Status.SCHEDULED, Campaign.Status.ACTIVE),
        next_run_at__lte=now,
    ).values_list("pk", flat=True)
    runs = []
    for pk in ids:
        # Each campaign plans in its own transaction: one that fails is logged
        # and tried again next minute, and the others still go.
        try:
            run = campaign_run_due(campaign_id=pk, now=now)
        except Exception:
            logger.exception("planning campaign %s failed", pk)
            continue
        if run is not None:
            runs.append(run)
    return runs


@transaction.atomic
def trigger_consume(*, campaign_id: int, now: datetime | None = None) -> int:
    """Plan a delivery for everyone who entered the campaign's trigger segment
    since the last time, unless they had one of its messages within the re-entry
    window; return how many were planned."""
    now = now or timezone.now()
    campaign = (
        Campaign.objects.select_for_update(skip_locked=True)
        .filter(
            pk=campaign_id,
            kind=Campaign.Kind.TRIGGERED,
            status=Campaign.Status.ACTIVE,
            trigger_segment__isnull=False,
        )
        .first()
    )
    if campaign is None:
        return 0
    entries = SegmentEvent.objects.filter(
        segment_id=campaign.trigger_segment_id,
        kind=SegmentEvent.Kind.ENTERED,
        pk__gt=campaign.trigger_cursor,
    )
    last = entries.aggregate(last=Max("pk"))["last"]
    if last is None:
        return 0
    recently = Delivery.objects.filter(
        campaign=campaign,
        planned_at__gt=now - timedelta(days=campaign.trigger_reentry_days),
    ).values("customer_id")
    customers = (
        entries.filter(pk__lte=last)
        .exclude(customer_id__in=recently)
        .values("customer_id")
    )
    due = now + timedelta(minutes=campaign.trigger_delay_minutes)
    # One run per day of entries: the unique key per run and customer keeps a
    # customer who enters twice on one day from a second message.
    run, _created = CampaignRun.objects.get_or_create(
        campaign=campaign,
        key=timezone.localtime(now, shop_zone()).strftime("%Y-%m-%d"),
        defaults={"due_at": due},
    )
    planned = run_plan(run=run, customer_ids=customers, due=due)
    if run.status == CampaignRun.Status.FINISHED:
        run.status = CampaignRun.Status.SENDING
        run.finished_at = None
        run.save(update_fields=["status", "finished_at"])
    campaign.trigger_cursor = last
    campaign.save(update_fields=["trigger_cursor", "updated_at"])
    return planned


def triggers_consume(*, now: datetime | None = None) -> int:
    ids = Campaign.objects.filter(
        kind=Campaign.Kind.TRIGGERED, status=Campaign.Status.ACTIVE
    ).values_list("pk", flat=True)
    return sum(trigger_consume(campaign_id=pk, now=now) for pk in ids)
