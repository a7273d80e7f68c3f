"""Thin Celery tasks around the segment engine; ids and times only, never data."""

from datetime import datetime

from celery import shared_task
from django.utils import timezone


@shared_task(acks_late=True, soft_time_limit=55, time_limit=60)
def segments_drain_task() -> int:
    """Evaluate the customers marked dirty by recent contacts."""
    from crm.counters import flag_lower

    from .services.engine import DRAIN_PENDING_KEY, dirty_drain

    # Cleared before claiming: a contact committed from here on schedules a new
    # drain, one committed before is claimed below.
    flag_lower(DRAIN_PENDING_KEY)
    return dirty_drain()


@shared_task(acks_late=True, soft_time_limit=25, time_limit=30)
def segments_drain_sweep_task() -> None:
    """Safety net for drains that could not be enqueued (broker down)."""
    from .models import DirtyCustomer
    from .services.engine import drain_schedule

    if DirtyCustomer.objects.exists():
        drain_schedule()


@shared_task(acks_late=True, soft_time_limit=25, time_limit=30)
def segments_due_task() -> int:
    """Re-evaluate customers whose time-based conditions may have flipped."""
    from .services import due_refresh

    return due_refresh()


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def segments_birthdays_task() -> int:
    from .services.engine import birthdays_refresh

    return birthdays_refresh()


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def segments_recompute_range_task(
    first_id: int, last_id: int, run: str, ranges: int, now: str
) -> int:
    """Recompute one customer-id range; the last range to finish recounts sizes."""
    from crm import fanout

    from .services import recompute_finalize, recompute_range

    at = datetime.fromisoformat(now)
    with fanout.range_failure_reported(run, first_id, last_id):
        changed = recompute_range(first_id=first_id, last_id=last_id, now=at)
    if fanout.range_done(run, ranges, changed=changed):
        recompute_finalize(now=at)
        fanout.run_finish(run)
    return changed


def recompute_dispatch(*, chunk_size: int | None = None, now=None) -> tuple[str, int]:
    """Start a whole-base recompute as a Celery group; returns (run, ranges).

    Follow it with `crm.fanout.progress(run)` or `crm.fanout.wait(run)`.
    """
    from crm import fanout

    from .compiler import context_build
    from .services.engine import recompute_finalize

    now = now or timezone.now()
    # Missing RFM thresholds computed once here rather than by every range's worker.
    context_build(now=now)
    run, ranges = fanout.ranges_dispatch(
        segments_recompute_range_task,
        chunk_size=chunk_size,
        args=(now.isoformat(),),
        on_empty=lambda: recompute_finalize(now=now),
    )
    return run, ranges


@shared_task(acks_late=True, soft_time_limit=60, time_limit=90)
def segments_recompute_task(chunk_size: int | None = None) -> int:
    """Fan a whole-base recompute out over the workers, one task per id range."""
    return recompute_dispatch(chunk_size=chunk_size)[1]


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def segments_nightly_task() -> None:
    """Recompute RFM thresholds, then recompute the whole base as a safety net."""
    from .services import rfm_thresholds_compute

    rfm_thresholds_compute()
    segments_recompute_task.delay()
