"""Thin Celery tasks around campaigns; ids and channel names only, never data.

Beat's minute (`campaigns_tick_task`) does the cheap bookkeeping itself and
starts one task per campaign with work to plan, so one slow plan delays no other
campaign and the planning spreads over the workers. In embedded mode (no
REDIS_URL) tasks run eagerly, in the caller's process, one after the other.
"""

from celery import shared_task
from django.db import transaction
from django.utils import timezone

# Send tasks started per channel when messages are due: one per worker process
# that may work on them.
SEND_TASKS_PER_CHANNEL = 2


def sends_dispatch(channels) -> None:
    for channel in channels:
        for _ in range(SEND_TASKS_PER_CHANNEL):
            channel_send_task.delay(channel)


@shared_task(acks_late=True, soft_time_limit=55, time_limit=60)
def campaigns_tick_task() -> None:
    """Beat's minute: start a planning task per campaign with a run due and per
    running triggered campaign, report lost sends as unknown, finish runs, and
    start senders for whatever is due."""
    from .services.runs import campaigns_due, triggered_campaigns
    from .services.sending import due_channels, leases_expire, runs_finish

    for campaign_id in campaigns_due():
        campaign_run_task.delay(campaign_id)
    for campaign_id in triggered_campaigns():
        campaign_trigger_task.delay(campaign_id)
    leases_expire()
    runs_finish()
    sends_dispatch(due_channels(now=timezone.now()))


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def campaign_run_task(campaign_id: int) -> None:
    """Plan the campaign's due run, if it is still due, and start senders for
    the channels it made due now."""
    from .services.runs import campaign_run_due
    from .services.sending import due_channels

    run = campaign_run_due(campaign_id=campaign_id)
    if run is not None:
        channels = due_channels(now=timezone.now(), run=run)
        transaction.on_commit(lambda: sends_dispatch(channels))


@shared_task(acks_late=True, soft_time_limit=55, time_limit=60)
def campaign_trigger_task(campaign_id: int) -> None:
    """Plan the triggered campaign's new entries; send what is due at once."""
    from .services.runs import trigger_consume

    _trigger_sends(lambda now: trigger_consume(campaign_id=campaign_id, now=now))


@shared_task(acks_late=True, soft_time_limit=55, time_limit=60)
def triggers_consume_task() -> None:
    """Plan the triggered campaigns' new entries and send what is due now."""
    from .services.runs import triggers_consume

    _trigger_sends(lambda now: triggers_consume(now=now))


def _trigger_sends(consume) -> None:
    from .services.sending import due_channels

    now = timezone.now()
    if consume(now):
        # Entries without a trigger delay were planned for exactly `now`: only
        # their channels get senders; delayed ones are the tick's once due.
        channels = due_channels(now=now, planned_since=now)
        transaction.on_commit(lambda: sends_dispatch(channels))


@shared_task(acks_late=False, soft_time_limit=58, time_limit=70)
def channel_send_task(channel: str) -> int:
    """Send due messages of one channel for up to 50 seconds.

    Not acknowledged late: a task redelivered after a lost worker would find the
    rows it claimed under their lease, and the lease, not the broker, decides
    what happens to them (they become unknown, never sent twice).
    """
    from .services.sending import channel_drain

    return channel_drain(channel=channel, seconds=50.0)
