"""RFM quintile thresholds, stored so one customer is scored without a global pass."""

import math
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from crm.models import CustomerStats

from ..models import RfmThresholds

QUANTILES = (0.2, 0.4, 0.6, 0.8)


def _percentiles_postgresql(now: datetime) -> tuple[list, list, list, int]:
    table = CustomerStats._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT
                percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8]) WITHIN GROUP (
                    ORDER BY floor(extract(epoch FROM (%s - last_purchase_at)) / 86400)
                ),
                percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8])
                    WITHIN GROUP (ORDER BY orders),
                percentile_cont(ARRAY[0.2, 0.4, 0.6, 0.8])
                    WITHIN GROUP (ORDER BY total_spent),
                COUNT(*)
            FROM {table} WHERE orders > 0
            """,
            [now],
        )
        recency, frequency, monetary, count = cursor.fetchone()
    return list(recency or []), list(frequency or []), list(monetary or []), count


def _interpolate(values: list[float], q: float) -> float:
    # Linear interpolation between closest ranks, as percentile_cont does.
    position = q * (len(values) - 1)
    low = math.floor(position)
    high = min(low + 1, len(values) - 1)
    return values[low] + (position - low) * (values[high] - values[low])


def _percentiles_portable(now: datetime) -> tuple[list, list, list, int]:
    rows = CustomerStats.objects.filter(orders__gt=0)
    count = rows.count()
    if not count:
        return [], [], [], 0

    def column(values) -> list[float]:
        ordered = sorted(float(v) for v in values)
        return [_interpolate(ordered, q) for q in QUANTILES]

    days = [
        math.floor((now - last).total_seconds() / 86400)
        for last in rows.values_list("last_purchase_at", flat=True)
    ]
    return (
        column(days),
        column(rows.values_list("orders", flat=True)),
        column(rows.values_list(F("total_spent"), flat=True)),
        count,
    )


@transaction.atomic
def rfm_thresholds_compute(*, now: datetime | None = None) -> RfmThresholds:
    """Compute and store today's quintile thresholds of R, F and M.

    PostgreSQL computes them in one aggregate; the embedded SQLite default, which has
    no percentile function, sorts the (small) column in Python.
    """
    now = now or timezone.now()
    compute = (
        _percentiles_postgresql
        if connection.vendor == "postgresql"
        else _percentiles_portable
    )
    recency, frequency, monetary, count = compute(now)
    return RfmThresholds.objects.create(
        recency=[float(v) for v in recency],
        frequency=[float(v) for v in frequency],
        monetary=[float(v) for v in monetary],
        computed_at=now,
        customers=count,
    )


def rfm_thresholds_after_stats(*, customer_ids: set[int] | None = None) -> None:
    """Receiver of `crm.hooks.stats_rebuilt`: recompute the thresholds.

    Quintiles are of the whole base, so however few customers changed, every
    threshold may have moved.
    """
    rfm_thresholds_compute()


def rfm_thresholds_latest() -> RfmThresholds | None:
    """The thresholds computed last, as stored (never computed here)."""
    return RfmThresholds.objects.order_by("-computed_at", "-id").first()


def rfm_thresholds_current(*, now: datetime | None = None) -> RfmThresholds:
    """The latest thresholds, computed first when there are none (or the latest
    were computed on a base without buyers and buyers exist now), so an evaluation
    never scores every customer 1 for want of the nightly job."""
    latest = rfm_thresholds_latest()
    if latest is not None and (
        latest.customers or not CustomerStats.objects.filter(orders__gt=0).exists()
    ):
        return latest
    return rfm_thresholds_compute(now=now)
