"""Explanations in words: days ago, money with its currency, RFM scores and bands."""

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import CustomerStats
from segments.explanations import days_ago_text, rfm_bands
from segments.fields import Context
from segments.models import RfmThresholds
from segments.selectors import segment_explain
from tests.crm.factories import CustomerFactory
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db

RULE = {
    "all": [
        {"field": "last_purchase", "op": "within_days", "value": 30},
        {"field": "days_since_last_purchase", "op": "lt", "value": 10},
        {"field": "total_spent", "op": "gt", "value": 100},
        {"field": "rfm_recency", "op": "gte", "value": 4},
        {"field": "rfm_frequency", "op": "gte", "value": 2},
        {"field": "rfm_monetary", "op": "gte", "value": 3},
        {"field": "rfm_segment", "op": "eq", "value": "potential_loyalist"},
    ]
}


def leaves(tree):
    if tree["kind"] == "leaf":
        return [tree]
    return [leaf for child in tree["children"] for leaf in leaves(child)]


# The oracle: plain Python, from the definitions, not from the code under test.


def oracle_days_ago(days: int) -> str:
    return {0: "today", 1: "yesterday"}.get(days, f"{days} days ago")


def oracle_scores(thresholds, days, orders, spent):
    r = 1 + sum(days < math.ceil(t) for t in thresholds["recency"])
    f = 1 + sum(orders > t for t in thresholds["frequency"])
    m = 1 + sum(spent > Decimal(str(t)) for t in thresholds["monetary"])
    return r, f, m


def oracle_band(values_scores: dict[int, int], score: int) -> tuple | None:
    """The smallest and largest of the values that earn `score`, or None."""
    earning = [value for value, s in values_scores.items() if s == score]
    return (min(earning), max(earning)) if earning else None


def band_words(low, high, unit, top):
    if high >= top:
        return f"{low} {unit}s or more"
    if low == high:
        return f"{low} {unit}" + ("" if low == 1 else "s")
    return f"{low}-{high} {unit}s"


thresholds_st = st.fixed_dictionaries(
    {
        "recency": st.lists(st.floats(1, 200), min_size=4, max_size=4).map(sorted),
        "frequency": st.lists(st.floats(1, 12), min_size=4, max_size=4).map(sorted),
        "monetary": st.lists(
            st.integers(1000, 100_000).map(lambda c: c / 100), min_size=4, max_size=4
        ).map(sorted),
    }
)
TOP_DAYS = 400
TOP_ORDERS = 40


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    thresholds=thresholds_st,
    seconds_ago=st.integers(0, (TOP_DAYS - 1) * 86400),
    orders=st.integers(1, TOP_ORDERS - 1),
    cents=st.integers(1, 200_000),
)
def test_explanation_texts_agree_with_an_oracle(thresholds, seconds_ago, orders, cents):
    with transaction.atomic():
        now = timezone.now()
        spent = Decimal(cents) / 100
        customer = CustomerFactory(stats=None)
        CustomerStats.objects.create(
            customer=customer,
            orders=orders,
            total_spent=spent,
            avg_order_value=spent / orders,
            first_purchase_at=now - timedelta(seconds=seconds_ago),
            last_purchase_at=now - timedelta(seconds=seconds_ago),
        )
        stored = RfmThresholds.objects.create(
            computed_at=now, customers=100, **thresholds
        )
        ctx = Context(now=now, today=timezone.localdate(now), rfm=stored)
        segment = SegmentFactory(rules=RULE)

        tree = segment_explain(customer=customer, segment=segment, ctx=ctx)

        days = seconds_ago // 86400
        r, f, m = oracle_scores(thresholds, days, orders, spent)
        within, since, money, rr, ff, mm, rfm = (leaf["says"] for leaf in leaves(tree))
        assert within == (
            f"last purchase {oracle_days_ago(days)}; "
            "the rule wants within the last 30 days"
        )
        assert since.startswith(f"last purchase {oracle_days_ago(days)}; ")
        assert money == (f"spent EUR {spent:,.2f}; the rule wants more than EUR 100.00")
        recency_scores = {
            d: oracle_scores(thresholds, d, 1, Decimal(0))[0] for d in range(TOP_DAYS)
        }
        low, high = oracle_band(recency_scores, r)
        recency_band = (
            f"{low} days or more" if high == TOP_DAYS - 1 else f"{low}-{high} days"
        )
        if low == high and high != TOP_DAYS - 1:
            recency_band = f"{low} day" + ("" if low == 1 else "s")
        assert rr.startswith(
            f"R {r} (last purchase {oracle_days_ago(days)}; R {r} means {recency_band})"
        )
        frequency_scores = {
            n: oracle_scores(thresholds, 0, n, Decimal(0))[1]
            for n in range(1, TOP_ORDERS)
        }
        low, high = oracle_band(frequency_scores, f)
        plural = "" if orders == 1 else "s"
        assert ff.startswith(
            f"F {f} ({orders} order{plural}; F {f} means "
            f"{band_words(low, high, 'order', TOP_ORDERS - 1)})"
        )
        assert mm.startswith(f"M {m} (EUR {spent:,.2f}; M {m} means ")
        assert all(text in rfm for text in (f"R {r} (", f"F {f} (", f"M {m} ("))
        assert "potential loyalists needs R 3 or more and F 2 or more" in rfm
        transaction.set_rollback(True)


@pytest.mark.parametrize(
    ("days", "text"),
    [(0, "today"), (1, "yesterday"), (2, "2 days ago"), (12, "12 days ago")],
)
def test_days_ago_words(days, text):
    assert days_ago_text(days) == text


def test_a_customer_who_never_bought_is_said_to_have_never_bought():
    customer = CustomerFactory()
    segment = SegmentFactory(
        rules={"field": "last_purchase", "op": "before_days", "value": 90}
    )

    tree = segment_explain(customer=customer, segment=segment)

    assert tree["says"] == "never bought; the rule wants more than 90 days ago"


def test_equal_thresholds_leave_a_score_nobody_gets():
    stored = RfmThresholds(recency=[5, 5, 9, 20], frequency=[1, 1, 2, 4])

    assert rfm_bands(stored, "recency")[4].empty
    assert rfm_bands(stored, "frequency")[2].empty
    assert rfm_bands(stored, "frequency")[3].text() == "2 orders"


# Pages -------------------------------------------------------------------------------


def test_explain_page_says_days_and_money(marketer_client, store, products):
    customer = CustomerFactory(stats=None)
    now = timezone.now()
    CustomerStats.objects.create(
        customer=customer,
        orders=3,
        total_spent=Decimal("240.00"),
        avg_order_value=Decimal("80.00"),
        last_purchase_at=now - timedelta(days=12, hours=1),
    )
    segment = SegmentFactory(
        rules={
            "all": [
                {"field": "last_purchase", "op": "within_days", "value": 30},
                {"field": "total_spent", "op": "gt", "value": 500},
            ]
        }
    )

    response = marketer_client.get(
        reverse("admin:segments_segment_explain", args=[segment.pk, customer.pk])
    )

    content = response.content.decode()
    assert "Last purchase 12 days ago; the rule wants within the last 30 days" in (
        content
    )
    assert "Spent EUR 240.00; the rule wants more than EUR 500.00" in content


def test_rfm_thresholds_page_shows_a_table_with_units(marketer_client):
    stored = RfmThresholds.objects.create(
        recency=[8.0, 21.0, 50.0, 120.0],
        frequency=[1.0, 3.0, 5.0, 9.0],
        monetary=[80.0, 150.0, 300.0, 700.0],
        customers=50,
    )

    listing = marketer_client.get(reverse("admin:segments_rfmthresholds_changelist"))
    detail = marketer_client.get(
        reverse("admin:segments_rfmthresholds_change", args=[stored.pk])
    )

    assert "8-20 days" in listing.content.decode()
    table = detail.content.decode()
    for text in (
        "0-7 days",
        "8-20 days",
        "120 days or more",
        "1 order",
        "2-3 orders",
        "10 orders or more",
        "up to EUR 80.00",
        "more than EUR 150.00 up to EUR 300.00",
        "more than EUR 700.00",
    ):
        assert text in table
    assert "[8.0, 21.0" not in table


def test_the_explain_page_costs_the_same_queries_for_two_conditions_or_six(
    marketer_client,
):

    customer = CustomerFactory()
    leaves = [
        {"field": "last_purchase", "op": "within_days", "value": 30},
        {"field": "total_spent", "op": "gt", "value": 500},
        {"field": "orders", "op": "gte", "value": 2},
        {"field": "city", "op": "eq", "value": "Delft"},
        {"field": "rfm_recency", "op": "gte", "value": 3},
        {"field": "days_since_last_purchase", "op": "lt", "value": 10},
    ]
    counts = []
    for size in (2, 6):
        segment = SegmentFactory(rules={"all": leaves[:size]})
        url = reverse("admin:segments_segment_explain", args=[segment.pk, customer.pk])
        marketer_client.get(url)
        with CaptureQueriesContext(connection) as queries:
            assert marketer_client.get(url).status_code == 200
        counts.append(len(queries))

    assert counts[0] == counts[1]
