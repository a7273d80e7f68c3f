"""Whole-base work split into customer-id ranges, run as a Celery group.

Any worker on the same Redis and PostgreSQL takes ranges, so a shop that outgrows
one machine adds worker machines and every whole-base pass spreads over them. Each
range task reports to `range_done`; the last one to finish learns it is last (to
recount or summarise) and marks the run finished. Callers that wait (management
commands, the benchmarks) follow `progress(run)`.
"""

import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from celery import group
from django.core.cache import cache
from django.db.models import Max, Min

from crm.models import Customer

# Runs are followed for six hours at most: far beyond any pass.
TTL = 6 * 3600


class RunFailed(RuntimeError):
    """A range of the run raised: the run will not finish."""


@dataclass(frozen=True)
class Progress:
    ranges_done: int
    changed: int
    finished: bool
    failed: str = ""


# Without an explicit size the base is cut into at most RANGES equal ranges of at
# least MIN_RANGE ids: every range pays a fixed cost that grows with the base (compiling
# the rules, whole-table subqueries such as "holds a card"), so a fixed small size
# would make the total overhead grow with the square of the base.
RANGES = 8
MIN_RANGE = 50_000


def customer_id_ranges(chunk_size: int | None = None) -> list[tuple[int, int]]:
    bounds = Customer.objects.aggregate(first=Min("pk"), last=Max("pk"))
    first, last = bounds["first"], bounds["last"]
    if first is None:
        return []
    if chunk_size is None:
        # Equal ranges, none under MIN_RANGE ids: a remainder range would pay the
        # fixed cost for a handful of customers, after the others.
        span = last - first + 1
        count = max(1, min(RANGES, span // MIN_RANGE))
        chunk_size = -(-span // count)
    return [
        (low, min(low + chunk_size - 1, last))
        for low in range(first, last + 1, chunk_size)
    ]


def _key(run: str, part: str) -> str:
    return f"fanout:{run}:{part}"


def ranges_dispatch(
    task,
    *,
    chunk_size: int | None = None,
    args: tuple = (),
    on_empty: Callable[[], None] | None = None,
) -> tuple[str, int]:
    """Start `task(first_id, last_id, run, ranges, *args)` for every id range.

    Returns (run, number of ranges); with no customers the run is finished at once.
    """
    run = uuid.uuid4().hex
    ranges = customer_id_ranges(chunk_size)
    for part in ("ranges", "changed"):
        cache.set(_key(run, part), 0, timeout=TTL)
    if not ranges:
        # What the last range would have done (a recount), before anyone waiting
        # sees the run finished.
        if on_empty is not None:
            on_empty()
        run_finish(run)
        return run, 0
    group(
        task.s(low, high, run, len(ranges), *args) for low, high in ranges
    ).apply_async()
    return run, len(ranges)


def range_done(run: str, ranges: int, *, changed: int = 0) -> bool:
    """Count a finished range; True for exactly the one that completes the run.

    A range redelivered after a worker died (acks_late) may count twice, which
    only makes the last step run early; the next pass corrects it.
    """
    cache.add(_key(run, "changed"), 0, timeout=TTL)
    cache.incr(_key(run, "changed"), changed)
    cache.add(_key(run, "ranges"), 0, timeout=TTL)
    return cache.incr(_key(run, "ranges")) == ranges


@contextmanager
def range_failure_reported(run: str, first_id: int, last_id: int):
    """Around a range task's work: a failure marks the run failed, so whoever
    waits hears of it at once instead of after a timeout. Only the exception's
    type is kept (its text may quote data); the worker's log has the rest."""
    try:
        yield
    except Exception as exc:
        cache.set(
            _key(run, "failed"),
            f"customer ids {first_id}-{last_id}: {type(exc).__name__}",
            timeout=TTL,
        )
        raise


def run_finish(run: str) -> None:
    cache.set(_key(run, "finished"), 1, timeout=TTL)


def progress(run: str) -> Progress:
    return Progress(
        ranges_done=int(cache.get(_key(run, "ranges")) or 0),
        changed=int(cache.get(_key(run, "changed")) or 0),
        finished=bool(cache.get(_key(run, "finished"))),
        failed=cache.get(_key(run, "failed")) or "",
    )


def wait(
    run: str,
    *,
    timeout: float = 3600.0,
    poll: float = 0.05,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Block until `run` is finished; RunFailed as soon as a range fails,
    TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        state = progress(run)
        if on_progress is not None:
            on_progress(state)
        if state.failed:
            raise RunFailed(
                f"Run {run} failed in {state.failed}; see the worker's log."
            )
        if state.finished:
            return state
        if time.monotonic() > deadline:
            raise TimeoutError(f"Run {run} did not finish within {timeout:.0f} s.")
        time.sleep(poll)


def follow(run: str, ranges: int, *, stream, quiet: bool = False) -> Progress:
    """Wait for `run` with a progress bar of its ranges on `stream` (commands).

    Without a broker (embedded mode) the ranges ran in this process while they
    were dispatched, so the run is already finished.
    """
    from django.core.management.base import CommandError
    from tqdm import tqdm

    with tqdm(total=ranges, unit="range", disable=quiet, file=stream) as bar:
        try:
            return wait(
                run,
                poll=0.2,
                on_progress=lambda state: bar.update(
                    min(state.ranges_done, ranges) - bar.n
                ),
            )
        except RunFailed as exc:
            raise CommandError(str(exc)) from None
