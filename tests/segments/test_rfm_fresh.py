"""RFM is right whenever it is read: no nightly job between an import and a score."""

import statistics
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm.models import Customer
from crm.services import customer_stats_rebuild
from crm.services.imports import receipts_import
from segments.fields import rfm_segment_of
from segments.models import RfmThresholds, Segment
from segments.services.engine import recompute_all
from tests.crm.test_import_receipts import csv_file
from tests.segments.factories import member_ids

pytestmark = pytest.mark.django_db


def history(now):
    """Receipts of twelve customers, of varied recency, frequency and value."""
    rows, receipts = [], []
    plans = [
        (days, count, price)
        for days, count, price in zip(
            (2, 5, 15, 30, 60, 90, 120, 200, 300, 400, 500, 700),
            (6, 1, 4, 2, 5, 1, 3, 1, 2, 7, 1, 2),
            (
                "19.99",
                "250.00",
                "45.50",
                "80.00",
                "12.00",
                "99.90",
                "30.00",
                "500.00",
                "9.95",
                "60.00",
                "15.00",
                "120.00",
            ),
            strict=True,
        )
    ]
    for n, (days, count, price) in enumerate(plans):
        email = f"c{n}@example.com"
        for i in range(count):
            # Half a day off the whole: whole days since the purchase never sit on
            # the boundary while the test runs.
            at = now - timedelta(days=days + 7 * i, hours=12)
            number = f"H{n}-{i}"
            quantity = 1 + (i % 2)
            rows.append(
                f"{number},{email},{at.isoformat()},ams,SHOE-1,{quantity},{price}"
            )
            receipts.append((email, at, Decimal(price) * quantity))
    return csv_file(*rows), receipts


def oracle(receipts, now):
    """RFM segment of each customer email, from the receipts alone.

    Thresholds are the 20/40/60/80 % percentiles (linear interpolation, as
    PostgreSQL's percentile_cont) over buyers of whole days since the last purchase,
    number of receipts and money spent; a score is 1 + the thresholds passed
    (fewer days than t; more orders or money than t).
    """
    last, orders, spent = {}, defaultdict(int), defaultdict(Decimal)
    for email, at, total in receipts:
        last[email] = max(last.get(email, at), at)
        orders[email] += 1
        spent[email] += total
    days = {e: int((now - at).total_seconds() // 86400) for e, at in last.items()}

    def quintiles(values):
        return statistics.quantiles(sorted(values), n=5, method="inclusive")

    t_r, t_f = quintiles(days.values()), quintiles(orders.values())
    t_m = quintiles(float(v) for v in spent.values())
    return {
        email: rfm_segment_of(
            1 + sum(t > days[email] for t in t_r),
            1 + sum(t < orders[email] for t in t_f),
            1 + sum(t < float(spent[email]) for t in t_m),
        )
        for email in last
    }


def rfm_members() -> dict[str, str]:
    emails = dict(Customer.objects.values_list("pk", "email"))
    found = {}
    for segment in Segment.objects.filter(slug__startswith="rfm-"):
        for pk in member_ids(segment):
            assert pk not in found, "a customer in two RFM segments"
            found[emails[pk]] = segment.rules["value"]
    return found


def test_imported_history_is_scored_straight_away_like_the_oracle(store, products):
    now = timezone.now()
    source, receipts = history(now)

    receipts_import(source=source, create_missing=True)
    # Straight away: the import computed the thresholds, no nightly job ran.
    thresholds = RfmThresholds.objects.latest()
    recompute_all()

    assert thresholds.customers == 12
    expected = oracle(receipts, now)
    assert len(set(expected.values())) > 3  # not everyone in one segment
    assert rfm_members() == expected


def test_the_engine_computes_missing_thresholds_before_scoring(store, products):
    now = timezone.now()
    source, receipts = history(now)
    receipts_import(source=source, create_missing=True)
    RfmThresholds.objects.all().delete()

    recompute_all()

    assert RfmThresholds.objects.count() == 1
    assert rfm_members() == oracle(receipts, now)


def test_a_stats_rebuild_recomputes_the_thresholds(store, products):
    source, _receipts = history(timezone.now())
    receipts_import(source=source, create_missing=True)
    RfmThresholds.objects.all().delete()

    customer_stats_rebuild()

    assert RfmThresholds.objects.get().customers == 12
