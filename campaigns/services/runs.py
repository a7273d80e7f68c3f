"""Runs: beat's minute tick plans what is due; segment entries start triggered ones.

Schedules live in the database (`Campaign.next_run_at`, the triggered campaigns'
`trigger_read_from`), and a tick that fires twice plans nothing twice: a run's key is
unique per campaign and a delivery's per run.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from segments.models import SegmentEvent

from ..models import Campaign, CampaignRun, Delivery
from ..recurrence import next_occurrence, shop_zone
from .planning import run_plan


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


def campaigns_due(*, now: datetime | None = None) -> list[int]:
    """The ids of the campaigns with a run due (one-off send, recurrence)."""
    now = now or timezone.now()
    return list(
        Campaign.objects.filter(
            status__in=(Campaign.Status.SCHEDULED, Campaign.Status.ACTIVE),
            next_run_at__lte=now,
        )
        .exclude(kind=Campaign.Kind.TRIGGERED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


@transaction.atomic
def trigger_consume(*, campaign_id: int, now: datetime | None = None) -> int:
    """Plan a delivery for everyone who entered the campaign's trigger segment
    since the last time, unless they had one of its messages within the re-entry
    window; return how many were planned.

    The cursor is a time, read back with an overlap, not the last SegmentEvent id
    read: ids are handed out when a row is inserted and rows become visible when
    their transaction commits, so an entry with a lower id can appear after a
    higher one was read, and an id cursor would skip it for ever. An entry's
    `occurred_at` is the start of the segment work that records it, so it is
    visible at most that work's duration later; every consume reads again the
    entries of the last CAMPAIGN_TRIGGER_OVERLAP_MINUTES (set beyond the longest
    segment task's time limit). Reading an entry twice plans nothing twice: a
    customer with any delivery of the campaign within the re-entry window (at
    least a day, longer than the overlap) is left out, and a run holds one row
    per customer (the unique (campaign, run, customer) key).
    """
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
    )
    if campaign.trigger_read_from is not None:
        entries = entries.filter(occurred_at__gte=campaign.trigger_read_from)
    read_from = now - timedelta(minutes=settings.CAMPAIGN_TRIGGER_OVERLAP_MINUTES)
    if campaign.trigger_read_from is None or read_from > campaign.trigger_read_from:
        campaign.trigger_read_from = read_from
        campaign.save(update_fields=["trigger_read_from"])
    recently = Delivery.objects.filter(
        campaign=campaign,
        planned_at__gt=now - timedelta(days=campaign.trigger_reentry_days),
    ).values("customer_id")
    customers = entries.exclude(customer_id__in=recently).values("customer_id")
    if not customers.exists():
        return 0
    due = now + timedelta(minutes=campaign.trigger_delay_minutes)
    # One run per day of entries: the unique key per run and customer keeps a
    # customer who enters twice on one day from a second message.
    run, _created = CampaignRun.objects.get_or_create(
        campaign=campaign,
        key=timezone.localtime(now, shop_zone()).strftime("%Y-%m-%d"),
        defaults={"due_at": due},
    )
    # The run stays locked until this commits: runs_finish skips a run while
    # rows are being added to it, and a consume that comes while a finish holds
    # the lock waits for it, then sees the run finished and reopens it.
    run = CampaignRun.objects.select_for_update().get(pk=run.pk)
    planned = run_plan(run=run, customer_ids=customers, due=due)
    if run.status == CampaignRun.Status.FINISHED:
        run.status = CampaignRun.Status.SENDING
        run.finished_at = None
        run.save(update_fields=["status", "finished_at"])
    return planned


def triggered_campaigns() -> list[int]:
    """The ids of the running triggered campaigns."""
    return list(
        Campaign.objects.filter(
            kind=Campaign.Kind.TRIGGERED, status=Campaign.Status.ACTIVE
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def triggers_consume(*, now: datetime | None = None) -> int:
    """Consume the new entries of every running triggered campaign."""
    return sum(trigger_consume(campaign_id=pk, now=now) for pk in triggered_campaigns())
