"""`bench segments`: the segment engine measured against hand-written SQL floors.

The floors are plain SQL written here by hand, never produced by the engine: they
are the least work any engine must do on this database (see
docs/benchmarks.md and the "Benchmarks" section of issue 4). Every engine figure
is then reported next to the target it is held to, as a multiple of a floor.

The 50 segments are defined in `BENCH_SEGMENTS` as (rule, hand-written SQL) pairs,
side by side, and the bench checks that the engine's member counts equal the
counts of the hand-written predicates, so the floor counts the same thing.
"""

import json
import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, transaction
from django.utils import timezone

from crm import fanout
from crm.counters import flag_lower
from crm.models import Category, Contact, Customer, Receipt, Tag
from crm.services import contact_record, customer_stats_rebuild
from segments.compiler import rule_check
from segments.fields import RFM_SEGMENTS
from segments.models import (
    CustomerSegmentState,
    DirtyCustomer,
    RfmThresholds,
    Segment,
)
from segments.services import (
    dirty_drain,
    due_refresh,
    recompute_all,
    rfm_thresholds_compute,
)
from segments.services.engine import DRAIN_PENDING_KEY
from segments.tasks import recompute_dispatch, segments_drain_task

from .base import BenchSuite

SLUG_PREFIX = "bench-"
ROOT = Path(__file__).resolve().parent.parent
WORKERS = 2

# Targets of issue 4, as multiples of the floors or absolute figures.
FULL_REBUILD_FACTOR = 3.0
NOOP_FACTOR = 1.5
THROUGHPUT_TARGET = 2000.0
LATENCY_P95_MS = 500.0
LATENCY_P99_MS = 2000.0
TIME_FLIP_P99_S = 60.0


@dataclass(frozen=True)
class BenchSegment:
    """A segment of the bench: its rule and the same condition as hand-written SQL.

    `sql` is a predicate over `c` (crm_customer), `s` (its crm_customerstats row,
    LEFT JOINed, so NULL for a customer without one), `sc` (r, f, m RFM scores) and
    `rs` (rfm, the RFM segment name). Constants are placeholders: {now} and {today}
    are the bench's clock, {d30} is {now} - 30 days, {cat_<slug>} and {tag_<slug>}
    are ids, and {seg_<slug>} is the parenthesised SQL of an earlier bench segment,
    so a nested segment reads like the rule it mirrors.
    """

    slug: str
    kind: str
    rule: dict
    sql: str


def _leaf(field: str, op: str, value: Any) -> dict:
    return {"field": field, "op": op, "value": value}


def _age_sql(condition: str) -> str:
    return f"extract(year FROM age({{today}}, c.birth_date)) {condition}"


def _latest_consent_sql(channel: str) -> str:
    # Hand-written predicates: every value is one of this module's constants.
    return (
        "(SELECT k.status FROM crm_consent k WHERE k.customer_id = c.id "  # noqa: S608
        f"AND k.channel = '{channel}' ORDER BY k.recorded_at DESC, k.id DESC LIMIT 1)"
    )


def _contacts_30d_sql(kind: str | None = None) -> str:
    of_kind = f" AND k.kind = '{kind}'" if kind else ""
    return (
        "(SELECT count(*) FROM crm_contact k WHERE k.customer_id = c.id"  # noqa: S608
        f"{of_kind} AND k.occurred_at >= {{d30}})"
    )


def _bought_sql(category: str, since: str = "") -> str:
    return (
        "EXISTS (SELECT 1 FROM crm_customercategorystats cc "  # noqa: S608
        f"WHERE cc.customer_id = c.id AND cc.category_id = {{cat_{category}}}{since})"
    )


Kind = Segment.Kind

BENCH_SEGMENTS: tuple[BenchSegment, ...] = (
    # Demographic.
    BenchSegment(
        "age-18-24",
        Kind.DEMOGRAPHIC,
        _leaf("age", "between", [18, 24]),
        _age_sql("BETWEEN 18 AND 24"),
    ),
    BenchSegment(
        "age-25-34",
        Kind.DEMOGRAPHIC,
        _leaf("age", "between", [25, 34]),
        _age_sql("BETWEEN 25 AND 34"),
    ),
    BenchSegment(
        "age-35-54",
        Kind.DEMOGRAPHIC,
        _leaf("age", "between", [35, 54]),
        _age_sql("BETWEEN 35 AND 54"),
    ),
    BenchSegment(
        "age-55-plus", Kind.DEMOGRAPHIC, _leaf("age", "gte", 55), _age_sql(">= 55")
    ),
    BenchSegment(
        "women", Kind.DEMOGRAPHIC, _leaf("gender", "eq", "f"), "c.gender = 'f'"
    ),
    BenchSegment(
        "upper-income",
        Kind.DEMOGRAPHIC,
        _leaf("income_band", "in", ["upper_middle", "high"]),
        "c.income_band IN ('upper_middle', 'high')",
    ),
    BenchSegment(
        "families",
        Kind.DEMOGRAPHIC,
        _leaf("family_situation", "in", ["young_children", "older_children"]),
        "c.family_situation IN ('young_children', 'older_children')",
    ),
    BenchSegment(
        "young-singles",
        Kind.DEMOGRAPHIC,
        {
            "all": [
                _leaf("family_situation", "eq", "single"),
                _leaf("age", "lt", 35),
            ]
        },
        "c.family_situation = 'single' AND " + _age_sql("< 35"),
    ),
    # Geographic.
    BenchSegment(
        "amsterdam",
        Kind.GEOGRAPHIC,
        _leaf("city", "eq", "Amsterdam"),
        "lower(c.city) = 'amsterdam'",
    ),
    BenchSegment(
        "big-cities",
        Kind.GEOGRAPHIC,
        _leaf("city", "in", ["Rotterdam", "Den Haag", "Utrecht"]),
        "lower(c.city) IN ('rotterdam', 'den haag', 'utrecht')",
    ),
    BenchSegment(
        "zuid-holland",
        Kind.GEOGRAPHIC,
        _leaf("region", "eq", "Zuid-Holland"),
        "lower(c.region) = 'zuid-holland'",
    ),
    BenchSegment(
        "outside-noord-holland",
        Kind.GEOGRAPHIC,
        _leaf("region", "ne", "Noord-Holland"),
        "c.region <> '' AND lower(c.region) <> 'noord-holland'",
    ),
    # Behavioural.
    BenchSegment(
        "repeat-buyers", Kind.BEHAVIOURAL, _leaf("orders", "gte", 2), "s.orders >= 2"
    ),
    BenchSegment(
        "frequent-buyers",
        Kind.BEHAVIOURAL,
        _leaf("orders", "gte", 15),
        "s.orders >= 15",
    ),
    BenchSegment(
        "spent-500",
        Kind.BEHAVIOURAL,
        _leaf("total_spent", "gt", 500),
        "s.total_spent > 500",
    ),
    BenchSegment(
        "spent-2000",
        Kind.BEHAVIOURAL,
        _leaf("total_spent", "gt", 2000),
        "s.total_spent > 2000",
    ),
    BenchSegment(
        "big-baskets",
        Kind.BEHAVIOURAL,
        _leaf("avg_order_value", "gte", 100),
        "s.orders > 0 AND s.avg_order_value >= 100",
    ),
    BenchSegment(
        "bought-shoes",
        Kind.BEHAVIOURAL,
        _leaf("categories_bought", "contains", "shoes"),
        _bought_sql("shoes"),
    ),
    BenchSegment(
        "kids-and-home",
        Kind.BEHAVIOURAL,
        {
            "all": [
                _leaf("categories_bought", "contains", "kids"),
                _leaf("categories_bought", "contains", "home"),
            ]
        },
        _bought_sql("kids") + " AND " + _bought_sql("home"),
    ),
    BenchSegment(
        "favourite-beauty",
        Kind.BEHAVIOURAL,
        _leaf("favourite_category", "eq", "beauty"),
        "s.favourite_category_id = {cat_beauty}",
    ),
    BenchSegment(
        "online-shoppers",
        Kind.BEHAVIOURAL,
        _leaf("purchase_channel", "eq", "online"),
        "s.preferred_purchase_channel = 'online'",
    ),
    BenchSegment(
        "email-readers",
        Kind.BEHAVIOURAL,
        _leaf("email_opens_30d", "gte", 2),
        _contacts_30d_sql("email_open") + " >= 2",
    ),
    BenchSegment(
        "engaged",
        Kind.BEHAVIOURAL,
        _leaf("contacts_30d", "gte", 5),
        _contacts_30d_sql() + " >= 5",
    ),
    BenchSegment(
        "silent-30d",
        Kind.BEHAVIOURAL,
        _leaf("contacts_30d", "eq", 0),
        "NOT EXISTS (SELECT 1 FROM crm_contact k WHERE k.customer_id = c.id "
        "AND k.occurred_at >= {d30})",
    ),
    BenchSegment(
        "sustainability",
        Kind.BEHAVIOURAL,
        _leaf("tags", "contains", "sustainability"),
        "EXISTS (SELECT 1 FROM crm_customer_tags ct WHERE ct.customer_id = c.id "
        "AND ct.tag_id = {tag_sustainability})",
    ),
    # Time-based.
    BenchSegment(
        "bought-30d",
        Kind.JOURNEY,
        _leaf("last_purchase", "within_days", 30),
        "s.last_purchase_at >= {d30}",
    ),
    BenchSegment(
        "bought-90d",
        Kind.JOURNEY,
        _leaf("last_purchase", "within_days", 90),
        "s.last_purchase_at >= {now} - interval '90 days'",
    ),
    BenchSegment(
        "lapsed-180d",
        Kind.JOURNEY,
        _leaf("last_purchase", "before_days", 180),
        "s.last_purchase_at < {now} - interval '180 days'",
    ),
    BenchSegment(
        "lapsed-365d",
        Kind.JOURNEY,
        _leaf("last_purchase", "before_days", 365),
        "s.last_purchase_at < {now} - interval '365 days'",
    ),
    BenchSegment(
        "drifting",
        Kind.JOURNEY,
        _leaf("days_since_last_purchase", "between", [60, 120]),
        "floor(extract(epoch FROM {now} - s.last_purchase_at) / 86400) "
        "BETWEEN 60 AND 120",
    ),
    BenchSegment(
        "new-60d",
        Kind.JOURNEY,
        _leaf("first_purchase", "within_days", 60),
        "s.first_purchase_at >= {now} - interval '60 days'",
    ),
    BenchSegment(
        "quiet-60d",
        Kind.JOURNEY,
        _leaf("last_contact", "before_days", 60),
        "s.last_contact_at < {now} - interval '60 days'",
    ),
    BenchSegment(
        "shoes-90d",
        Kind.JOURNEY,
        _leaf("bought_category_within_days", "eq", {"category": "shoes", "days": 90}),
        _bought_sql("shoes", " AND cc.last_purchase_at >= {now} - interval '90 days'"),
    ),
    BenchSegment(
        "lapsed-big-spenders",
        Kind.JOURNEY,
        {
            "all": [
                _leaf("total_spent", "gt", 1000),
                _leaf("last_purchase", "before_days", 120),
            ]
        },
        "s.total_spent > 1000 AND s.last_purchase_at < {now} - interval '120 days'",
    ),
    # RFM.
    *(
        BenchSegment(
            f"rfm-{name.replace('_', '-')}",
            Kind.VALUE,
            _leaf("rfm_segment", "eq", name),
            f"rs.rfm = '{name}'",
        )
        for name in RFM_SEGMENTS
    ),
    BenchSegment("rfm-recent", Kind.VALUE, _leaf("rfm_recency", "gte", 4), "sc.r >= 4"),
    # Loyalty.
    BenchSegment(
        "card-holders",
        Kind.VALUE,
        _leaf("has_loyalty_card", "eq", True),
        "EXISTS (SELECT 1 FROM crm_loyaltycard lc WHERE lc.customer_id = c.id "
        "AND lc.status = 'active')",
    ),
    BenchSegment(
        # The highest active tier is gold or platinum <=> some active card is.
        "gold-plus",
        Kind.VALUE,
        _leaf("loyalty_tier", "in", ["gold", "platinum"]),
        "EXISTS (SELECT 1 FROM crm_loyaltycard lc WHERE lc.customer_id = c.id "
        "AND lc.status = 'active' AND lc.tier IN ('gold', 'platinum'))",
    ),
    # Consent.
    BenchSegment(
        "email-opt-in",
        Kind.OTHER,
        _leaf("email_consent", "eq", True),
        _latest_consent_sql("email") + " = 'granted'",
    ),
    BenchSegment(
        "no-sms-opt-in",
        Kind.OTHER,
        _leaf("sms_consent", "eq", False),
        _latest_consent_sql("sms") + " IS DISTINCT FROM 'granted'",
    ),
    # Nested; a segment nested in another is one defined above it.
    BenchSegment(
        "vip",
        Kind.OTHER,
        _leaf("segment", "in", ["bench-rfm-champions", "bench-spent-2000"]),
        "{seg_rfm_champions} OR {seg_spent_2000}",
    ),
    BenchSegment(
        "reachable-regulars",
        Kind.OTHER,
        {
            "all": [
                _leaf("segment", "in", ["bench-repeat-buyers"]),
                _leaf("email_consent", "eq", True),
            ]
        },
        "{seg_repeat_buyers} AND {seg_email_opt_in}",
    ),
    BenchSegment(
        "upper-income-not-vip",
        Kind.OTHER,
        {
            "all": [
                _leaf("income_band", "in", ["upper_middle", "high"]),
                _leaf("segment", "not_in", ["bench-vip"]),
            ]
        },
        # A rule is never NULL, so `not` of a NULL SQL predicate must be true.
        "{seg_upper_income} AND NOT COALESCE({seg_vip}, false)",
    ),
)


# Helpers ----------------------------------------------------------------------------


def _say(stdout: TextIO, message: str) -> None:
    stdout.write(message + "\n")
    stdout.flush()


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _percentile(values: list[float], percent: float) -> float | None:
    """Nearest-rank percentile; None without samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return ordered[rank - 1]


def _timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def _scalar(sql: str, params: list | None = None) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchone()[0]


def _sql_timestamp(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.astimezone(UTC).isoformat()}'"


# Setup ------------------------------------------------------------------------------


def _customers_ensure(customers: int, stdout: TextIO) -> None:
    existing = Customer.objects.count()
    if existing == customers:
        return
    if existing:
        raise CommandError(
            f"The database has {existing:,} customers, not the {customers:,} asked "
            "for. Run the bench on a fresh, migrated database (it seeds it with "
            f"seed_demo) or pass --customers {existing}."
        )
    _say(stdout, f"Seeding {customers:,} demo customers with seed_demo (seed 1)...")
    call_command("seed_demo", customers=customers, seed=1, stdout=stdout)


def _segments_ensure() -> list[Segment]:
    """The bench's segments, created or brought back to their definition.

    Rows are written directly rather than through `segment_create`: the service
    enqueues a whole-base recompute per segment on commit, and the bench times
    that recompute itself. `rule_check` still validates and normalises every rule.
    """
    existing = {
        segment.slug: segment
        for segment in Segment.objects.filter(slug__startswith=SLUG_PREFIX)
    }
    known = dict(
        Segment.objects.exclude(slug__startswith=SLUG_PREFIX).values_list(
            "slug", "rules"
        )
    )
    wanted: list[Segment] = []
    for spec in BENCH_SEGMENTS:
        slug = SLUG_PREFIX + spec.slug
        rules = rule_check(spec.rule, segment_rules=known, own_slug=slug)
        known[slug] = rules
        segment = existing.pop(slug, None) or Segment(slug=slug)
        segment.name = f"Bench: {spec.slug.replace('-', ' ')}"
        segment.kind = spec.kind
        segment.rules = rules
        segment.is_active = True
        wanted.append(segment)
    with transaction.atomic():
        # Only the bench's segments stay active, so the engine evaluates exactly
        # the predicates the floor counts (a bench database is a database of its
        # own; see bench_segments).
        Segment.objects.filter(is_active=True).exclude(
            slug__in=[s.slug for s in wanted]
        ).update(is_active=False)
        Segment.objects.bulk_update(
            [s for s in wanted if s.pk], ["name", "kind", "rules", "is_active"]
        )
        Segment.objects.bulk_create([s for s in wanted if not s.pk])
    return list(
        Segment.objects.filter(slug__in=[s.slug for s in wanted]).order_by("pk")
    )


# Floors -----------------------------------------------------------------------------


def _stats_floor() -> float:
    """Seconds to aggregate every completed receipt per customer into an empty copy
    of the stats table, with its primary key and indexes: the least a stats rebuild
    must write."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_stats_floor")
        cursor.execute(
            "CREATE TABLE bench_stats_floor (LIKE crm_customerstats INCLUDING ALL)"
        )
        try:
            started = time.perf_counter()
            cursor.execute(
                """
                INSERT INTO bench_stats_floor
                    (customer_id, orders, total_spent, avg_order_value,
                     first_purchase_at, last_purchase_at, orders_in_store,
                     orders_online, orders_by_phone, preferred_purchase_channel,
                     updated_at)
                SELECT customer_id, count(*), sum(total),
                       round(sum(total) / count(*), 2),
                       min(purchased_at), max(purchased_at),
                       count(*) FILTER (WHERE channel = 'store'),
                       count(*) FILTER (WHERE channel = 'online'),
                       count(*) FILTER (WHERE channel = 'phone'),
                       '', now()
                FROM crm_receipt
                WHERE status = 'completed' AND customer_id IS NOT NULL
                GROUP BY customer_id
                """
            )
            return time.perf_counter() - started
        finally:
            cursor.execute("DROP TABLE bench_stats_floor")


def _floor_constants(now: datetime) -> dict[str, str]:
    thresholds = RfmThresholds.objects.order_by("-computed_at", "-id").first()
    consts = {
        "now": _sql_timestamp(now),
        "d30": _sql_timestamp(now - timedelta(days=30)),
        "today": f"DATE '{timezone.localdate(now).isoformat()}'",
    }
    categories = dict(Category.objects.values_list("slug", "pk"))
    tags = dict(Tag.objects.values_list("slug", "pk"))
    for slug in ("shoes", "kids", "home", "beauty"):
        consts[f"cat_{slug}"] = str(categories.get(slug, 0))
    consts["tag_sustainability"] = str(tags.get("sustainability", 0))

    def score(terms: list[str]) -> str:
        return " + ".join(["1", *terms])

    recency = thresholds.recency if thresholds else []
    frequency = thresholds.frequency if thresholds else []
    monetary = thresholds.monetary if thresholds else []
    consts["r_score"] = score(
        [
            f"(s.last_purchase_at > {_sql_timestamp(now)} "
            f"- interval '{math.ceil(t)} days')::int"
            for t in recency
        ]
    )
    consts["f_score"] = score([f"(s.orders > {t!r})::int" for t in frequency])
    consts["m_score"] = score([f"(s.total_spent > {t!r})::int" for t in monetary])
    return consts


def _floor_predicates(consts: dict[str, str]) -> list[str]:
    values = dict(consts)
    predicates = []
    for spec in BENCH_SEGMENTS:
        predicate = spec.sql.format(**values)
        values[f"seg_{spec.slug.replace('-', '_')}"] = f"({predicate})"
        predicates.append(predicate)
    return predicates


def floor_sql(now: datetime) -> str:
    """One pass over customers and their stored stats counting every predicate."""
    consts = _floor_constants(now)
    counts = ",\n    ".join(
        f"count(*) FILTER (WHERE {predicate})"
        for predicate in _floor_predicates(consts)
    )
    return f"""
SELECT
    {counts}
FROM crm_customer c
LEFT JOIN crm_customerstats s ON s.customer_id = c.id
CROSS JOIN LATERAL (
    SELECT CASE WHEN s.orders > 0 THEN {consts["r_score"]} END AS r,
           CASE WHEN s.orders > 0 THEN {consts["f_score"]} END AS f,
           CASE WHEN s.orders > 0 THEN {consts["m_score"]} END AS m
) sc
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN sc.r IS NULL THEN NULL
        WHEN sc.r >= 4 AND sc.f >= 4 AND sc.m >= 4 THEN 'champions'
        WHEN sc.r <= 2 AND sc.f >= 4 AND sc.m >= 4 THEN 'cant_lose'
        WHEN sc.r >= 3 AND sc.f >= 4 THEN 'loyal'
        WHEN sc.r <= 2 AND sc.f >= 3 THEN 'at_risk'
        WHEN sc.r >= 4 AND sc.f = 1 THEN 'new'
        WHEN sc.r >= 3 AND sc.f >= 2 THEN 'potential_loyalist'
        WHEN sc.r = 1 THEN 'lost'
        ELSE 'hibernating'
    END AS rfm
) rs
"""  # noqa: S608 - every constant is computed here, none comes from input


def _sql_floor(now: datetime, *, serial: bool) -> tuple[float, list[int]]:
    """Seconds and counts of the one-pass floor; best of two runs, caches warm."""
    sql = floor_sql(now)
    best, counts = math.inf, []
    for _run in range(2):
        with transaction.atomic(), connection.cursor() as cursor:
            if serial:
                # As inside INSERT ... SELECT, which PostgreSQL 15 never parallelises.
                cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            started = time.perf_counter()
            cursor.execute(sql)
            counts = list(cursor.fetchone())
            best = min(best, time.perf_counter() - started)
    return best, counts


# Engine: whole base -------------------------------------------------------------------


def _tables_empty() -> None:
    """Derived data only: memberships, history, engine state and statistics."""
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE segments_segmentevent, "
            "segments_customersegmentstate, segments_evaluationrow, "
            "segments_dirtycustomer, crm_customerstats, crm_customercategorystats"
        )
    Segment.objects.update(size=0, last_computed_at=None, built_at=None)


# Engine: incremental ------------------------------------------------------------------


def _recompute_by_workers(now) -> int:
    """Dispatch a whole-base recompute to the workers and wait until it is done."""
    run, _ranges = recompute_dispatch(now=now)
    return fanout.wait(run).changed


def _workers_idle(timeout: float = 600.0) -> None:
    """Wait until no task is queued, reserved or running on any worker."""
    from config.celery import app

    deadline = time.monotonic() + timeout
    with app.connection_for_write() as conn:
        while time.monotonic() < deadline:
            queued = conn.default_channel.client.llen("celery")
            inspect = app.control.inspect(timeout=1.0)
            busy = [
                task
                for reply in (inspect.active() or {}, inspect.reserved() or {})
                for tasks in reply.values()
                for task in tasks
            ]
            if not queued and not busy:
                return
            time.sleep(0.5)
    raise CommandError("The workers were still busy after ten minutes.")


def _stats_by_workers() -> int:
    from crm.tasks import stats_rebuild_dispatch

    run, _ranges = stats_rebuild_dispatch()
    return fanout.wait(run).changed


def _dirty_mark(customer_ids: list[int]) -> None:
    now = timezone.now()
    DirtyCustomer.objects.bulk_create(
        [DirtyCustomer(customer_id=pk, marked_at=now) for pk in customer_ids],
        batch_size=5000,
        ignore_conflicts=True,
    )


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"] or "", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{user}{password}@{db['HOST']}{port}/{db['NAME']}"


class Workers:
    """Real Celery worker processes on this database and this Redis."""

    def __init__(self, count: int, env: dict[str, str] | None = None) -> None:
        self.count = count
        self.env = env or {}
        self.prefix = f"bench{os.getpid()}"
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        env = {
            **os.environ,
            "DATABASE_URL": _database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            **self.env,
        }
        for index in range(self.count):
            self.processes.append(
                subprocess.Popen(  # noqa: S603 - fixed arguments, no shell
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "config",
                        "worker",
                        "--pool=solo",
                        "--without-heartbeat",
                        "--without-gossip",
                        "--without-mingle",
                        "--loglevel=WARNING",
                        "-n",
                        f"{self.prefix}-{index}@%h",
                    ],
                    cwd=ROOT,
                    env=env,
                )
            )
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        from config.celery import app

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise CommandError(
                        f"A Celery worker exited with {process.returncode}."
                    )
            replies = app.control.ping(timeout=1.0) or []
            ready = [name for reply in replies for name in reply]
            if sum(name.startswith(self.prefix) for name in ready) >= self.count:
                return
        raise CommandError(f"The Celery workers were not ready within {timeout} s.")

    def peak_rss_mb(self) -> list[float]:
        """Peak resident memory (VmHWM) of every worker process."""
        peaks = []
        for process in self.processes:
            status = Path(f"/proc/{process.pid}/status").read_text()
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(round(int(line.split()[1]) / 1024, 1))
        return peaks

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _drained_by_workers(customer_ids: list[int], timeout: float = 300.0) -> float:
    """Customers per second the running workers drain, a drain task each."""
    _dirty_mark(customer_ids)
    started = time.perf_counter()
    for _worker in range(WORKERS):
        segments_drain_task.delay()
    deadline = time.monotonic() + timeout
    left = len(customer_ids)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = DirtyCustomer.objects.count()
    elapsed = time.perf_counter() - started
    return (len(customer_ids) - left) / elapsed


@dataclass
class LatencyResult:
    samples_ms: list[float]
    sent: int
    lost: int
    duration_s: float
    record_ms: list[float]
    backlog_s: float | None


def _contacts_drive(
    customer_ids: list[int], *, rate: float, seconds: float, threads: int, grace: float
) -> LatencyResult:
    """Record web visits at `rate` per second and time each until it is evaluated.

    A contact counts as evaluated once its customer's dirty mark is gone (the
    drain that claimed it committed) or the customer's state was evaluated after
    the contact committed. A poller checks all pending contacts in one query every
    50 ms, so a figure is at most 50 ms above the true latency. Once the drive ends
    the poller waits up to `grace` seconds for the backlog; contacts still pending
    then are lost.
    """
    pending: dict[int, tuple[int, float]] = {}
    lock = threading.Lock()
    samples: list[float] = []
    record_ms: list[float] = []
    driving = threading.Event()
    driving.set()
    started = time.time()
    total = int(rate * seconds)

    def drive(offset: int) -> None:
        rng = random.Random(1000 + offset)  # noqa: S311 - repeatable, not secrets
        try:
            for number in range(offset, total, threads):
                delay = started + number / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
                customer = Customer(pk=rng.choice(customer_ids))
                begun = time.perf_counter()
                contact = contact_record(
                    customer=customer,
                    kind=Contact.Kind.WEB_VISIT,
                    channel=Contact.ContactChannel.ONLINE,
                )
                committed = time.time()
                with lock:
                    record_ms.append((time.perf_counter() - begun) * 1000)
                    pending[contact.pk] = (customer.pk, committed)
        finally:
            connection.close()

    def poll() -> None:
        try:
            while True:
                with lock:
                    snapshot = dict(pending)
                if not snapshot and not driving.is_set():
                    finished.append(time.time())
                    return
                if snapshot:
                    seen = time.time()
                    ids = list({customer for customer, _at in snapshot.values()})
                    with connection.cursor() as cursor:
                        cursor.execute(
                            """
                            SELECT s.customer_id, s.evaluated_at,
                                   EXISTS (SELECT 1 FROM segments_dirtycustomer d
                                           WHERE d.customer_id = s.customer_id)
                            FROM segments_customersegmentstate s
                            WHERE s.customer_id = ANY(%s)
                            """,
                            [ids],
                        )
                        state = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
                    done = []
                    for contact_id, (customer_id, committed) in snapshot.items():
                        evaluated_at, dirty = state.get(customer_id, (None, True))
                        fresh = (
                            evaluated_at is not None
                            and evaluated_at.timestamp() >= committed
                        )
                        if not dirty or fresh:
                            done.append(contact_id)
                            samples.append((seen - committed) * 1000)
                    with lock:
                        for contact_id in done:
                            del pending[contact_id]
                if not driving.is_set() and time.time() > stop_at:
                    return
                time.sleep(0.05)
        finally:
            connection.close()

    stop_at = math.inf
    finished: list[float] = []
    drivers = [threading.Thread(target=drive, args=(i,)) for i in range(threads)]
    poller = threading.Thread(target=poll)
    poller.start()
    for thread in drivers:
        thread.start()
    for thread in drivers:
        thread.join()
    duration = time.time() - started
    stop_at = time.time() + grace
    driving.clear()
    poller.join()
    backlog = finished[0] - started - duration if finished else None
    return LatencyResult(samples, total, len(pending), duration, record_ms, backlog)


# Time path ----------------------------------------------------------------------------


def _time_flips(*, hours: float, step_s: float) -> dict[str, Any]:
    """Beat every `step_s` over `hours` of simulated time, from now.

    The clock is simulated: `due_refresh(now=t)` runs for t = now + step, now +
    2 step, ..., so a day takes minutes. Before each beat the customers whose
    next check has come are read; a customer's lateness is the simulated time
    since its next check (at most one step, as with a real beat) plus the wall time
    the whole beat took, so a beat that cannot keep up shows as lateness.
    """
    caught_up = due_refresh()  # customers left due while the bench ran other parts
    start = timezone.now()
    lateness: list[float] = []
    slowest = 0.0
    processed = 0
    steps = max(1, int(hours * 3600 / step_s))
    for step in range(1, steps + 1):
        beat = start + timedelta(seconds=step * step_s)
        due = list(
            CustomerSegmentState.objects.filter(next_check_at__lte=beat).values_list(
                "next_check_at", flat=True
            )
        )
        elapsed, done = _timed(lambda at=beat: due_refresh(now=at))
        slowest = max(slowest, elapsed)
        processed += done
        lateness.extend((beat - at).total_seconds() + elapsed for at in due)
    return {
        "time_flip_lateness_s": {
            "p50": _round(_percentile(lateness, 50)),
            "p99": _round(_percentile(lateness, 99)),
            "max": _round(max(lateness, default=None)),
        },
        "time_flip_customers": processed,
        "time_flip_slowest_beat_s": _round(slowest),
        "time_flip_caught_up_first": caught_up,
        "time_flip_method": (
            f"simulated clock: due_refresh(now=t) for t = now + k * {step_s:g} s "
            f"over {hours:g} h ({steps} beats) in this process; lateness = (t - "
            "next_check_at) + wall time of that beat"
        ),
    }


# The bench --------------------------------------------------------------------------


def _target(value: float | None, op: str, limit: float | None) -> dict:
    compare = {"<=": float.__le__, "<": float.__lt__, ">=": float.__ge__}[op]
    met = (
        value is not None and limit is not None and compare(float(value), float(limit))
    )
    return {"value": _round(value), "op": op, "limit": _round(limit), "met": met}


def bench_segments(
    *,
    customers: int,
    json_path: str | None,
    worker: bool,
    stdout: TextIO,
    contact_rate: float = 200.0,
    contact_seconds: float = 60.0,
    contact_threads: int = 3,
    dirty_customers: int = 20_000,
    time_flip_hours: float = 2.0,
    time_flip_step_s: float = 30.0,
) -> dict:
    """Measure the segment engine on this PostgreSQL database; return the figures.

    Seeds an empty database with `customers` demo customers; refuses a database
    holding another number. Writes real data (segments, contacts, memberships):
    run it on a database of its own.
    """
    if connection.vendor != "postgresql":
        raise CommandError(
            "bench segments needs PostgreSQL (set DATABASE_URL=postgres://...); its "
            "targets are about PostgreSQL, not the embedded SQLite default."
        )
    if worker and not settings.REDIS_URL:
        raise CommandError(
            "bench segments starts Celery workers, which need Redis: set REDIS_URL "
            "or pass --no-worker."
        )
    from config.celery import app

    _customers_ensure(customers, stdout)
    now = timezone.now()
    rfm_thresholds_compute(now=now)
    others = list(
        Segment.objects.filter(is_active=True)
        .exclude(slug__startswith=SLUG_PREFIX)
        .values_list("slug", flat=True)
    )
    segments = _segments_ensure()
    customer_ids = list(Customer.objects.order_by("pk").values_list("pk", flat=True))
    rng = random.Random(1)  # noqa: S311 - repeatable samples, not secrets
    figures: dict[str, Any] = {
        "suite": "segments",
        "date": timezone.now().isoformat(timespec="seconds"),
        "customers": len(customer_ids),
        "receipts": Receipt.objects.count(),
        "contacts": Contact.objects.count(),
        "segments": len(segments),
        "deactivated_segments": others,
        "postgres_version": _scalar("SHOW server_version"),
        "work_mem": _scalar("SHOW work_mem"),
        "max_parallel_workers_per_gather": int(
            _scalar("SHOW max_parallel_workers_per_gather")
        ),
        "cpus": os.cpu_count(),
    }
    _say(
        stdout,
        f"bench segments: {len(customer_ids):,} customers, {figures['receipts']:,} "
        f"receipts, {len(segments)} bench segments; deactivated: {others or 'none'}",
    )

    # Floors and the whole-base path.
    figures["stats_floor_s"] = _round(_stats_floor())
    _say(stdout, f"  stats floor          {figures['stats_floor_s']} s")
    _tables_empty()
    whole_base = Workers(WORKERS) if worker else None
    eager_before = app.conf.task_always_eager
    if whole_base is not None:
        # The production path: the ranges run as a Celery group on real workers.
        app.conf.task_always_eager = False
        whole_base.start()
        figures["whole_base_mode"] = f"Celery group on {WORKERS} workers"
    else:
        figures["whole_base_mode"] = "in-process, range by range"

    def recompute() -> int:
        if whole_base is None:
            return recompute_all(now=now)
        return _recompute_by_workers(now)

    # Workers stop however the figures end: a failed pass must not leave them
    # consuming the queue.
    try:
        stats_s, _covered = _timed(
            customer_stats_rebuild if whole_base is None else _stats_by_workers
        )
        segments_s, changed = _timed(recompute)
        figures["full_rebuild_s"] = _round(stats_s + segments_s)
        figures["full_rebuild_stats_s"] = _round(stats_s)
        figures["full_rebuild_segments_s"] = _round(segments_s)
        figures["full_rebuild_changed"] = changed
        figures["memberships"] = sum(
            Segment.objects.filter(is_active=True).values_list("size", flat=True)
        )
        with connection.cursor() as cursor:
            # Planner statistics of the refilled tables, untimed, as autovacuum would
            # gather them; without them the later figures depend on its timing.
            cursor.execute(
                "ANALYZE crm_customerstats, crm_customercategorystats, "
                "segments_customersegmentstate"
            )
        _say(
            stdout,
            f"  full rebuild         {figures['full_rebuild_s']} s "
            f"(stats {stats_s:.3f} s, segments {segments_s:.3f} s)",
        )
        if whole_base is not None:
            # The pass just finished queued follow-up work (the personas' figures);
            # the no-op figure is the recompute alone, not the recompute sharing the
            # cores with that.
            figures["noop_waited_for_idle_workers_s"] = _round(_timed(_workers_idle)[0])
        noop_s, noop_changed = _timed(recompute)
    finally:
        app.conf.task_always_eager = eager_before
        if whole_base is not None:
            whole_base.stop()
    figures["noop_recompute_s"] = _round(noop_s)
    figures["noop_recompute_changed"] = noop_changed
    _say(stdout, f"  no-op recompute      {noop_s:.3f} s, {noop_changed} changed")
    sql_floor_s, counts = _sql_floor(now, serial=False)
    sql_floor_serial_s, _counts = _sql_floor(now, serial=True)
    figures["sql_floor_s"] = _round(sql_floor_s)
    figures["sql_floor_serial_s"] = _round(sql_floor_serial_s)
    _say(
        stdout,
        f"  SQL floor            {sql_floor_s:.3f} s (one worker "
        f"{sql_floor_serial_s:.3f} s)",
    )
    sizes = dict(
        Segment.objects.filter(pk__in=[s.pk for s in segments]).values_list(
            "slug", "size"
        )
    )
    mismatches = {
        SLUG_PREFIX + spec.slug: {
            "engine": sizes[SLUG_PREFIX + spec.slug],
            "floor": count,
        }
        for spec, count in zip(BENCH_SEGMENTS, counts, strict=True)
        if sizes[SLUG_PREFIX + spec.slug] != count
    }
    figures["segment_sizes"] = {slug: sizes[slug] for slug in sorted(sizes)}
    figures["counts_match_floor"] = not mismatches
    figures["count_mismatches"] = mismatches

    # Incremental path.
    sample = rng.sample(customer_ids, min(dirty_customers, len(customer_ids)))
    figures["incremental_customers"] = len(sample)
    _dirty_mark(sample)
    drain_s, drained = _timed(dirty_drain)
    in_process = drained / drain_s if drain_s else None
    figures["incremental_throughput_in_process_per_s"] = _round(in_process, 1)
    _say(stdout, f"  drain in-process     {drained:,} customers at {in_process:,.0f}/s")

    workers = Workers(WORKERS) if worker else None
    eager = app.conf.task_always_eager
    try:
        if workers is not None:
            app.conf.task_always_eager = False
            workers.start()
            by_workers = _drained_by_workers(sample)
            figures["incremental_throughput_workers_per_s"] = _round(by_workers, 1)
            figures["incremental_throughput_per_s"] = _round(by_workers, 1)
            figures["incremental_mode"] = (
                f"{WORKERS} Celery workers (--pool=solo) on Redis"
            )
            _say(stdout, f"  drain by {WORKERS} workers   {by_workers:,.0f}/s")
        else:
            # As in the embedded mode: the drain runs in-process after each commit.
            app.conf.task_always_eager = True
            # A marker left by a drain sent to a broker no worker reads would hold
            # back every in-process drain for its first seconds.
            flag_lower(DRAIN_PENDING_KEY)
            figures["incremental_throughput_workers_per_s"] = None
            figures["incremental_throughput_per_s"] = _round(in_process, 1)
            figures["incremental_mode"] = "no worker: tasks run eagerly in-process"
        _say(
            stdout,
            f"  driving {contact_rate:g} contacts/s for {contact_seconds:g} s...",
        )
        latency = _contacts_drive(
            customer_ids,
            rate=contact_rate,
            seconds=contact_seconds,
            threads=contact_threads,
            grace=300.0,
        )
        figures["worker_peak_rss_mb"] = (
            workers.peak_rss_mb() if workers is not None else None
        )
    finally:
        app.conf.task_always_eager = eager
        if workers is not None:
            workers.stop()
        connections.close_all()
    figures["incremental_latency_ms"] = {
        "p50": _round(_percentile(latency.samples_ms, 50), 1),
        "p95": _round(_percentile(latency.samples_ms, 95), 1),
        "p99": _round(_percentile(latency.samples_ms, 99), 1),
        "max": _round(max(latency.samples_ms, default=None), 1),
    }
    figures["contacts_sent"] = latency.sent
    figures["contacts_per_s_achieved"] = _round(latency.sent / latency.duration_s, 1)
    figures["contact_record_ms_p95"] = _round(_percentile(latency.record_ms, 95), 1)
    figures["lost"] = latency.lost
    figures["latency_backlog_after_drive_s"] = _round(latency.backlog_s)
    _say(
        stdout,
        f"  latency              p50 {figures['incremental_latency_ms']['p50']} ms, "
        f"p95 {figures['incremental_latency_ms']['p95']} ms, p99 "
        f"{figures['incremental_latency_ms']['p99']} ms, {latency.lost} lost",
    )

    # Time path, last: it leaves the engine's state a simulated day ahead.
    figures.update(_time_flips(hours=time_flip_hours, step_s=time_flip_step_s))
    _say(
        stdout,
        f"  time flips           p99 {figures['time_flip_lateness_s']['p99']} s late "
        f"over {figures['time_flip_customers']:,} customers",
    )

    floors = figures["stats_floor_s"] + figures["sql_floor_s"]
    latency_ms = figures["incremental_latency_ms"]
    figures["targets"] = {
        "full_rebuild_s <= 3 x (stats_floor_s + sql_floor_s)": _target(
            figures["full_rebuild_s"], "<=", FULL_REBUILD_FACTOR * floors
        ),
        "noop_recompute_s <= 1.5 x sql_floor_s": _target(
            figures["noop_recompute_s"], "<=", NOOP_FACTOR * figures["sql_floor_s"]
        ),
        "noop_recompute writes nothing": _target(noop_changed, "<=", 0),
        "engine counts equal the floor counts": _target(len(mismatches), "<=", 0),
        "incremental_throughput_per_s >= 2000": _target(
            figures["incremental_throughput_per_s"], ">=", THROUGHPUT_TARGET
        ),
        "incremental_latency_ms p95 < 500": _target(
            latency_ms["p95"], "<", LATENCY_P95_MS
        ),
        "incremental_latency_ms p99 < 2000": _target(
            latency_ms["p99"], "<", LATENCY_P99_MS
        ),
        "lost == 0": _target(latency.lost, "<=", 0),
        "time_flip_lateness_s p99 < 60": _target(
            figures["time_flip_lateness_s"]["p99"], "<", TIME_FLIP_P99_S
        ),
    }
    figures["all_targets_met"] = all(t["met"] for t in figures["targets"].values())

    text = json.dumps(figures, indent=2, default=str)
    _say(stdout, text)
    if json_path:
        Path(json_path).write_text(text + "\n")
    return figures


class SegmentsBench(BenchSuite):
    name = "segments"
    help = (
        "Segment engine against hand-written SQL floors: full rebuild, no-op "
        "recompute, incremental throughput and latency with real Celery workers, "
        "time flips. Seeds an empty PostgreSQL database; writes data."
    )

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument(
            "--customers",
            type=int,
            default=100_000,
            help="Customers the database must hold; an empty one is seeded (seed 1).",
        )
        parser.add_argument(
            "--json",
            dest="json_path",
            metavar="PATH",
            default=None,
            help="Also write the figures as JSON to PATH.",
        )
        parser.add_argument(
            "--no-worker",
            dest="worker",
            action="store_false",
            help="Start no Celery workers; tasks run eagerly in-process.",
        )
        parser.add_argument("--contact-rate", type=float, default=200.0)
        parser.add_argument("--contact-seconds", type=float, default=60.0)
        parser.add_argument("--time-flip-hours", type=float, default=2.0)

    def run(
        self,
        *,
        customers,
        json_path,
        worker,
        contact_rate,
        contact_seconds,
        time_flip_hours,
        **_options,
    ) -> bool:
        figures = bench_segments(
            customers=customers,
            json_path=json_path,
            worker=worker,
            stdout=self.stdout,
            contact_rate=contact_rate,
            contact_seconds=contact_seconds,
            time_flip_hours=time_flip_hours,
        )
        return figures["all_targets_met"]
