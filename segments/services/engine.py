"""The segment engine: incremental, time-driven and whole-base membership updates.

All three paths evaluate customers with one expression per segment built by
`segments.compiler.rule_condition`, giving per customer the ids of the matching
active segments, the persona the persona rules choose and the next moment a
time-based condition may flip. What differs is only which customers are evaluated
and how the differences are written.
"""

import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    DateTimeField,
    F,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Least, NullIf
from django.db.models.lookups import GreaterThan
from django.utils import timezone

from crm.counters import flag_raise
from crm.fanout import customer_id_ranges
from crm.models import Customer
from crm.services.contacts import ContactRef

from .. import hooks
from ..compiler import (
    context_build,
    persona_case,
    persona_rules_load,
    persona_time_candidates,
    rule_condition,
    rule_time_candidates,
)
from ..db import (
    MatchedIds,
    ids_elements_sql,
    ids_include_sql,
    results_differ_sql,
)
from ..fields import Context, clock
from ..models import (
    CustomerSegmentState,
    DirtyCustomer,
    EvaluationRow,
    Segment,
    SegmentEvent,
    SegmentSizeSnapshot,
)
from ..webhooks import segment_events_emit
from .batch_sql import batch_rows

logger = logging.getLogger(__name__)

DRAIN_PENDING_KEY = "segments:drain-pending"
# Customers marked per statement: three parameters each, far below SQLite's limit.
MARK_CHUNK = 300
# Stands in for "no time-based flip ahead", so LEAST never meets a NULL.
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
BATCH_SIZE = 500


# Evaluation ----------------------------------------------------------------------


def _active_segments() -> list[Segment]:
    return list(Segment.objects.filter(is_active=True).order_by("pk"))


def rules_fingerprint(segments: Sequence[Segment], ctx: Context) -> str:
    """Everything the results are computed with: the segment and persona rules
    (with the slugs nested rules name) and the RFM thresholds."""
    return json.dumps(
        [
            [[s.pk, s.slug, s.rules] for s in segments],
            [[p.pk, p.slug, p.rules] for p in ctx.personas or ()],
            getattr(ctx.rfm, "pk", None),
        ],
        sort_keys=True,
        default=str,
    )


def rules_version(fingerprint: str) -> str:
    """The short form of a fingerprint stored with each customer's results."""
    return hashlib.blake2s(fingerprint.encode(), digest_size=4).hexdigest()


def evaluation_queryset(
    customers: QuerySet,
    *,
    segments: Sequence[Segment],
    ctx: Context,
    with_next_check: bool = True,
) -> QuerySet:
    """`customers` as (pk, segment_ids, persona_id, next_check) rows: one pass
    evaluates every segment and the persona rules.

    Without `with_next_check` the costly next-check candidates are left out (NULL):
    a whole-base pass needs them only for the customers whose results changed.
    """
    matched = MatchedIds(
        (segment.pk, rule_condition(segment.rules, ctx)) for segment in segments
    )
    persona = persona_case(
        ctx, label=lambda p: p.pk, default=None, output_field=BigIntegerField()
    )
    candidates = (
        []
        if not with_next_check
        else list(
            dict.fromkeys(
                [
                    *(
                        candidate
                        for segment in segments
                        for candidate in rule_time_candidates(segment.rules, ctx)
                    ),
                    *(persona_time_candidates(ctx) if ctx.personas else []),
                ]
            )
        )
    )
    now = clock(ctx)
    future = [
        Case(
            When(GreaterThan(candidate, now), then=candidate),
            default=Value(FAR_FUTURE),
            output_field=DateTimeField(),
        )
        for candidate in candidates
    ]
    if not future:
        next_check = Cast(Value(None), output_field=DateTimeField())
    else:
        earliest = future[0] if len(future) == 1 else Least(*future)
        next_check = NullIf(earliest, Value(FAR_FUTURE))
    return (
        customers.order_by()
        .annotate(segment_ids=matched, persona_id=persona, next_check=next_check)
        .values_list("pk", "segment_ids", "persona_id", "next_check")
    )


# Incremental path ------------------------------------------------------------------


@transaction.atomic
def memberships_refresh(
    *,
    customer_ids: Iterable[int],
    cause: str = SegmentEvent.Cause.CONTACT,
    contacts: dict[int, int | None] | None = None,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Bring the memberships of a batch of customers up to date.

    Returns the number of (entries, exits). `contacts` maps customer ids to the
    contact that triggered the evaluation, kept in the history.
    """
    ids = sorted(set(customer_ids))
    if not ids:
        return 0, 0
    contacts = contacts or {}
    now = now or timezone.now()
    CustomerSegmentState.objects.bulk_create(
        [CustomerSegmentState(customer_id=pk) for pk in ids], ignore_conflicts=True
    )
    # Lock the customers' state rows in key order: a concurrent batch or a
    # whole-base pass over the same customers waits instead of writing a stale diff.
    current = dict(
        CustomerSegmentState.objects.select_for_update()
        .filter(customer_id__in=ids)
        .order_by("customer_id")
        .values_list("customer_id", "segment_ids")
    )
    segments = _active_segments()
    active = {segment.pk for segment in segments}
    version, computed = _batch_evaluate(ids, now, segments)

    entered: list[tuple[int, int]] = []
    exited: list[tuple[int, int]] = []
    for customer_id, result in computed.items():
        wanted = set(result.segment_ids)
        # An inactive segment's id leaves the arrays without history: its members
        # left when it was deactivated.
        have = set(current.get(customer_id) or ())
        entered.extend((customer_id, s) for s in sorted(wanted - have))
        exited.extend((customer_id, s) for s in sorted((have - wanted) & active))

    events = SegmentEvent.objects.bulk_create(
        [
            SegmentEvent(
                segment_id=s,
                customer_id=c,
                kind=kind,
                cause=cause,
                occurred_at=now,
                contact_id=contacts.get(c),
            )
            for kind, pairs in (
                (SegmentEvent.Kind.ENTERED, entered),
                (SegmentEvent.Kind.EXITED, exited),
            )
            for c, s in pairs
        ]
    )
    segment_events_emit(events=events)
    if entered:
        hooks.segment_entries_recorded.send(segment_ids={s for _c, s in entered})
    deltas: dict[int, int] = defaultdict(int)
    for _c, s in entered:
        deltas[s] += 1
    for _c, s in exited:
        deltas[s] -= 1
    # Segment rows in key order, so concurrent batches never deadlock.
    for segment_id in sorted(deltas):
        if deltas[segment_id]:
            Segment.objects.filter(pk=segment_id).update(
                size=F("size") + deltas[segment_id]
            )
    _states_write(computed, version=version, now=now)
    hooks.batch_personas_evaluated.send(
        wanted={pk: result.persona_id for pk, result in computed.items()},
        now=now,
        cause=cause,
        contacts=contacts,
    )
    return len(entered), len(exited)


class Evaluated(NamedTuple):
    """One customer's fresh results."""

    segment_ids: list[int]
    persona_id: int | None
    next_check: datetime | None


def _states_write(
    computed: dict[int, Evaluated], *, version: str, now: datetime
) -> None:
    """Store the batch's results and next checks in one statement.

    Rows whose results did not change are left alone: most contacts change nothing,
    and rewriting a row also rewrites its entries in the GIN index of the arrays.
    """
    if connection.vendor == "postgresql":
        # One statement over four arrays instead of bulk_update's CASE per row.
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {CustomerSegmentState._meta.db_table} s
                SET rules_version = %s, segment_ids = v.segment_ids,
                    persona_id = v.persona_id, next_check_at = v.next_check_at,
                    evaluated_at = %s
                FROM unnest(%s::bigint[], %s::jsonb[], %s::bigint[], %s::timestamptz[])
                    AS v (customer_id, segment_ids, persona_id, next_check_at)
                WHERE s.customer_id = v.customer_id
                  AND ({results_differ_sql("s", "v")}
                       OR s.next_check_at IS DISTINCT FROM v.next_check_at)
                """,
                [
                    version,
                    now,
                    list(computed),
                    [json.dumps(r.segment_ids) for r in computed.values()],
                    [r.persona_id for r in computed.values()],
                    [r.next_check for r in computed.values()],
                    version,
                ],
            )
        return
    CustomerSegmentState.objects.bulk_update(
        [
            CustomerSegmentState(
                customer_id=pk,
                rules_version=version,
                segment_ids=result.segment_ids,
                persona_id=result.persona_id,
                next_check_at=result.next_check,
                evaluated_at=now,
            )
            for pk, result in computed.items()
        ],
        ["rules_version", "segment_ids", "persona_id", "next_check_at", "evaluated_at"],
    )


def _batch_evaluate(
    ids: list[int], now: datetime, segments: Sequence[Segment]
) -> tuple[str, dict[int, Evaluated]]:
    """The rules version and each customer's results in `ids`, as of `now`."""
    segment_rules = {segment.slug: segment.rules for segment in segments}
    personas = persona_rules_load()
    ctx = context_build(now=now, segment_rules=segment_rules, personas=personas)
    fingerprint = rules_fingerprint(segments, ctx)
    rows = batch_rows(
        key=(fingerprint, ctx.today),
        build=lambda customers, ctx: evaluation_queryset(
            customers, segments=segments, ctx=ctx
        ),
        ctx=ctx,
        ids=ids,
    )
    return rules_version(fingerprint), {
        pk: Evaluated(json.loads(segment_ids), persona_id, next_check)
        for pk, segment_ids, persona_id, next_check in rows
    }


def customers_mark_dirty(*, contacts: Sequence[ContactRef]) -> None:
    """Contact consumer: note customers to re-evaluate, durably, in the contact's
    transaction; a drain task is scheduled once it commits."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    latest: dict[int, int | None] = {}
    for ref in contacts:
        if ref.contact_id is not None or ref.customer_id not in latest:
            latest[ref.customer_id] = ref.contact_id
    # Written out: every sale runs it, and the ORM's upsert cost more to compile
    # than to run. A customer already marked keeps its mark's time (the drain
    # takes the oldest first) and takes the newer contact, if this one names one.
    table = DirtyCustomer._meta.db_table
    rows = sorted(latest.items())
    with connection.cursor() as cursor:
        for start in range(0, len(rows), MARK_CHUNK):
            chunk = rows[start : start + MARK_CHUNK]
            cursor.execute(
                f"INSERT INTO {table} AS d (customer_id, contact_id, marked_at) "
                f"VALUES {', '.join(['(%s, %s, %s)'] * len(chunk))} "
                "ON CONFLICT (customer_id) DO UPDATE "
                "SET contact_id = COALESCE(excluded.contact_id, d.contact_id)",
                [value for pk, contact in chunk for value in (pk, contact, now)],
            )
    transaction.on_commit(drain_schedule)


def drain_schedule() -> None:
    """Enqueue one drain task unless one is already waiting to start."""
    from ..tasks import segments_drain_task

    try:
        if flag_raise(DRAIN_PENDING_KEY, timeout=10):
            segments_drain_task.delay()
    except Exception:
        # The dirty rows are committed; the periodic sweep drains them.
        logger.warning("Could not enqueue a segment drain", exc_info=True)


def _dirty_claim(batch_size: int) -> dict[int, int | None]:
    table = DirtyCustomer._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # SKIP LOCKED lets several workers drain side by side without waiting.
            cursor.execute(
                f"""
                DELETE FROM {table} WHERE customer_id IN (
                    SELECT customer_id FROM {table}
                    ORDER BY marked_at LIMIT %s FOR UPDATE SKIP LOCKED
                ) RETURNING customer_id, contact_id
                """,
                [batch_size],
            )
            return dict(cursor.fetchall())
    rows = dict(
        DirtyCustomer.objects.order_by("marked_at").values_list(
            "customer_id", "contact_id"
        )[:batch_size]
    )
    DirtyCustomer.objects.filter(customer_id__in=list(rows)).delete()
    return rows


def dirty_drain(*, batch_size: int = BATCH_SIZE) -> int:
    """Evaluate customers marked dirty, a batch per transaction; returns how many.

    A batch is claimed and evaluated in one transaction, so a worker that dies
    midway leaves its customers marked for the next drain.
    """
    done = 0
    while True:
        with transaction.atomic():
            claimed = _dirty_claim(batch_size)
            if not claimed:
                break
            memberships_refresh(
                customer_ids=claimed,
                cause=SegmentEvent.Cause.CONTACT,
                contacts=claimed,
            )
        done += len(claimed)
    return done


# Time path -------------------------------------------------------------------------


def due_refresh(*, now: datetime | None = None, batch_size: int = BATCH_SIZE) -> int:
    """Re-evaluate customers whose next time-based flip has come."""
    now = now or timezone.now()
    done = 0
    while True:
        with transaction.atomic():
            due = list(
                CustomerSegmentState.objects.select_for_update(skip_locked=True)
                .filter(next_check_at__lte=now)
                .order_by("next_check_at")
                .values_list("customer_id", flat=True)[:batch_size]
            )
            if not due:
                return done
            memberships_refresh(
                customer_ids=due, cause=SegmentEvent.Cause.TIME, now=now
            )
        done += len(due)


def birthdays_refresh(*, now: datetime | None = None) -> int:
    """Re-evaluate today's birthdays when an active rule looks at age."""
    from ..compiler import rule_uses_age

    now = now or timezone.now()
    rules = dict(Segment.objects.filter(is_active=True).values_list("slug", "rules"))
    in_use = [*rules.values(), *(p.rules for p in persona_rules_load())]
    if not any(rule_uses_age(rule, rules) for rule in in_use):
        return 0
    today = timezone.localdate(now)
    born_today = Customer.objects.filter(
        birth_date__month=today.month, birth_date__day=today.day
    )
    if today.month == 3 and today.day == 1:
        # People born on 29 February come of age on 1 March in other years.
        born_today = born_today | Customer.objects.filter(
            birth_date__month=2, birth_date__day=29
        )
    ids = list(born_today.values_list("pk", flat=True).order_by("pk"))
    for start in range(0, len(ids), BATCH_SIZE):
        memberships_refresh(
            customer_ids=ids[start : start + BATCH_SIZE],
            cause=SegmentEvent.Cause.TIME,
            now=now,
        )
    return len(ids)


# Whole-base path -------------------------------------------------------------------


def _tables() -> dict[str, str]:
    return {
        "customer": Customer._meta.db_table,
        "state": CustomerSegmentState._meta.db_table,
        "eval": EvaluationRow._meta.db_table,
        "event": SegmentEvent._meta.db_table,
        "segment": Segment._meta.db_table,
    }


def _evaluate_into(
    run: str,
    customers: QuerySet,
    *,
    changed_only: bool,
    ctx: Context,
    segments: Sequence[Segment],
    version: str,
) -> int:
    t = _tables()
    sql, params = evaluation_queryset(
        customers, segments=segments, ctx=ctx, with_next_check=not changed_only
    ).query.sql_with_params()
    # A changed rule changes the version, so customers whose results are unchanged
    # also keep the time-based moments they had.
    compare = (
        f"""JOIN {t["state"]} s ON s.customer_id = e.pk
        WHERE {results_differ_sql("s", "e")}"""
        if changed_only
        else ""
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {t["eval"]}
                (run, customer_id, segment_ids, persona_id, next_check_at)
            SELECT %s, e.pk, e.segment_ids, e.persona_id, e.next_check
            FROM ({sql}) e
            {compare}
            """,
            [run, *params, *([version] if changed_only else [])],
        )
        return cursor.rowcount


def recompute_range(*, first_id: int, last_id: int, now: datetime | None = None) -> int:
    """Set-based recompute of customers first_id..last_id; returns how many changed.

    One pass compares every customer's fresh results with the stored ones
    (`segments.db.results_differ_sql`); only customers whose results changed are
    written.
    """
    now = now or timezone.now()
    t = _tables()
    segments = _active_segments()
    # Entries into and exits from built segments are history; a segment's first
    # build is not (its members entered at `built_at`).
    tracked = [segment.pk for segment in segments if segment.built_at is not None]
    ctx = context_build(
        now=now,
        segment_rules={segment.slug: segment.rules for segment in segments},
        personas=persona_rules_load(),
        customer_ids=(first_id, last_id),
    )
    version = rules_version(rules_fingerprint(segments, ctx))
    detect, final = f"d{uuid.uuid4().hex[:30]}", f"f{uuid.uuid4().hex[:30]}"
    customers = Customer.objects.filter(pk__range=(first_id, last_id))
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL work_mem = '128MB'")
        cursor.execute(
            f"""
            INSERT INTO {t["state"]} (customer_id, rules_version, segment_ids)
            SELECT c.id, '', '[]' FROM {t["customer"]} c
            WHERE c.id BETWEEN %s AND %s
              AND NOT EXISTS (SELECT 1 FROM {t["state"]} s WHERE s.customer_id = c.id)
            """,
            [first_id, last_id],
        )
        created = cursor.rowcount
        if created and created == customers.count():
            # Every state row of the range was created just now and is invisible to
            # other transactions until commit: nothing to detect, nobody to race.
            changed = _evaluate_into(
                final,
                customers,
                changed_only=False,
                ctx=ctx,
                segments=segments,
                version=version,
            )
        else:
            changed = _evaluate_into(
                detect,
                customers,
                changed_only=True,
                ctx=ctx,
                segments=segments,
                version=version,
            )
            if not changed:
                return 0
            # Lock the changed customers, then evaluate them again: an incremental
            # batch that committed after the detecting pass must not be overwritten.
            list(
                CustomerSegmentState.objects.select_for_update()
                .filter(customer_id__in=_run_ids(detect))
                .order_by("customer_id")
                .values_list("customer_id", flat=True)
            )
            _evaluate_into(
                final,
                Customer.objects.filter(pk__in=_run_ids(detect)),
                changed_only=False,
                ctx=ctx,
                segments=segments,
                version=version,
            )
        if connection.vendor == "postgresql":
            # The scratch table's statistics describe whatever it held when last
            # analysed (often nothing); planned with them, the joins below can
            # turn into nested loops over the whole run. Sampling this run's rows
            # (its own, uncommitted) takes a few milliseconds.
            cursor.execute(f"ANALYZE {t['eval']}")
        _apply(cursor, final, now, tracked=tracked, version=version)
        EvaluationRow.objects.filter(run__in=[detect, final]).delete()
    return changed


def _run_ids(run: str) -> Subquery:
    return Subquery(EvaluationRow.objects.filter(run=run).values("customer_id"))


def _apply(
    cursor, run: str, now: datetime, *, tracked: Sequence[int], version: str
) -> None:
    """Write the run's results and the history of the `tracked` segments."""
    t = _tables()
    at = connection.ops.adapt_datetimefield_value(now)
    cause = SegmentEvent.Cause.RECOMPUTE
    if tracked:
        # The state rows still hold the memberships before this pass.
        now_in = ids_include_sql("e.segment_ids", "g.id", connection.vendor)
        was_in = ids_include_sql("s.segment_ids", "g.id", connection.vendor)
        cursor.execute(
            f"""
            INSERT INTO {t["event"]}
                (segment_id, customer_id, kind, cause, occurred_at, contact_id)
            SELECT g.id, e.customer_id,
                CASE WHEN {now_in} THEN 'entered' ELSE 'exited' END, %s, %s, NULL
            FROM {t["eval"]} e
            JOIN {t["state"]} s ON s.customer_id = e.customer_id
            JOIN {t["segment"]} g ON g.id IN ({", ".join(["%s"] * len(tracked))})
            WHERE e.run = %s AND {now_in} <> {was_in}
            """,
            [cause, at, *tracked, run],
        )
        hooks.segment_entries_recorded.send(segment_ids=set(tracked))
    cursor.execute(
        f"""
        UPDATE {t["state"]} SET rules_version = %s, segment_ids = e.segment_ids,
            persona_id = e.persona_id, next_check_at = e.next_check_at,
            evaluated_at = %s
        FROM {t["eval"]} e
        WHERE e.run = %s AND {t["state"]}.customer_id = e.customer_id
        """,
        [version, at, run],
    )
    hooks.run_personas_evaluated.send(cursor=cursor, run=run, now=now, cause=cause)
    segment_events_emit(
        events=SegmentEvent.objects.filter(
            cause=cause, occurred_at=now, customer_id__in=_run_ids(run)
        )
    )


def recompute_finalize(*, now: datetime | None = None) -> None:
    """Recount segment sizes, mark new segments built, take today's size snapshot.

    `now` is the pass's clock: segments created after it started wait for their own.
    """
    now = now or timezone.now()
    t = _tables()
    elements, element_id = ids_elements_sql("s.segment_ids", connection.vendor)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {element_id}, COUNT(*) FROM {t["state"]} s, {elements}
            GROUP BY {element_id}
            """
        )
        counted = dict(cursor.fetchall())
        segments = list(Segment.objects.select_for_update().order_by("pk"))
        for segment in segments:
            segment.size = counted.get(segment.pk, 0) if segment.is_active else 0
            if segment.is_active:
                segment.last_computed_at = now
                if segment.built_at is None and segment.created_at <= now:
                    segment.built_at = now
        Segment.objects.bulk_update(
            segments, ["size", "last_computed_at", "built_at"], batch_size=500
        )
        today = timezone.localdate(now)
        SegmentSizeSnapshot.objects.bulk_create(
            [
                SegmentSizeSnapshot(
                    segment_id=segment.pk, date=today, size=segment.size
                )
                for segment in segments
            ],
            update_conflicts=True,
            unique_fields=["segment", "date"],
            update_fields=["size"],
        )
        hooks.recompute_finished.send()


def recompute_all(
    *,
    now: datetime | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Recompute every customer in this process, range by range; returns changes."""
    now = now or timezone.now()
    changed = 0
    for first_id, last_id in customer_id_ranges(chunk_size):
        changed += recompute_range(first_id=first_id, last_id=last_id, now=now)
        if progress is not None:
            progress(last_id - first_id + 1)
    recompute_finalize(now=now)
    return changed
