"""Thin Celery tasks around campaigns; ids and channel names only, never data."""

from celery import shared_task
from django.conf import settings
from django.db import transaction

# Send tasks started per channel when messages are due: one per worker process
# that may work on them.
SEND_TASKS_PER_CHANNEL = 2


def sends_dispatch(channels) -> None:
    for channel in channels:
        for _ in range(SEND_TASKS_PER_CHANNEL):
            channel_send_task.delay(channel)


@shared_task(acks_late=True, soft_time_limit=55, time_limit=60)
def campaigns_tick_task() -> None:
    """Beat's minute: plan due runs and triggered entries, report lost sends as
    unknown, finish runs, and start senders for whatever is due."""
    from django.utils import timezone

    from .services.runs import runs_due, triggers_consume
    from .services.sending import due_deliveries, leases_expire, runs_finish

    runs_due()
    triggers_consume()
    leases_expire()
    runs_finish()
    due = (
        due_deliveries(now=timezone.now())
        .order_by()
        .values_list("channel", flat=True)
        .distinct()
    )
    sends_dispatch(list(due))


@shared_task(acks_late=True, soft_time_limit=55, time_limit=60)
def triggers_consume_task() -> None:
    """Plan the triggered campaigns' new entries and send what is due now."""
    from .services.runs import triggers_consume

    if triggers_consume():
        transaction.on_commit(lambda: sends_dispatch(settings.CAMPAIGN_RATE_LIMITS))


@shared_task(acks_late=False, soft_time_limit=58, time_limit=70)
def channel_send_task(channel: str) -> int:
    """Send due messages of one channel for up to 50 seconds.

    Not acknowledged late: a task redelivered after a lost worker would find the
    rows it claimed under their lease, and the lease, not the broker, decides
    what happens to them (they become unknown, never sent twice).
    """
    from .services.sending import channel_drain

    return channel_drain(channel=channel, seconds=50.0)
