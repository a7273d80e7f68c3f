"""The segment engine's dashboard cards against a plain-Python oracle."""

import math
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Customer, CustomerStats
from segments.dashboard import rfm_grid, segment_figures
from segments.models import RfmThresholds, Segment, SegmentEvent, SegmentSizeSnapshot

HYPOTHESIS = settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(autouse=True)
def empty_cache():
    cache.clear()
    yield
    cache.clear()


def sorted_thresholds(high: int):
    return st.lists(
        st.floats(min_value=0, max_value=high, allow_nan=False), min_size=4, max_size=4
    ).map(sorted)


buyer_st = st.tuples(
    st.integers(min_value=0, max_value=8),  # orders
    st.integers(min_value=0, max_value=400),  # days since the last purchase
    st.decimals(min_value=0, max_value=2000, places=2),  # total spent
)


def scores_oracle(orders, days, thresholds):
    # Half a day past `days`, so no purchase sits exactly on a day boundary.
    recency = 1 + sum(days + 0.5 < math.ceil(t) for t in thresholds.recency)
    frequency = 1 + sum(orders > t for t in thresholds.frequency)
    return recency, frequency


def buyers_write(buyers, now):
    for orders, days, spent in buyers:
        customer = Customer.objects.create()
        CustomerStats.objects.create(
            customer=customer,
            orders=orders,
            total_spent=spent,
            last_purchase_at=(now - timedelta(days=days, hours=12) if orders else None),
        )


@HYPOTHESIS
@given(
    buyers=st.lists(buyer_st, max_size=12),
    recency=sorted_thresholds(400),
    frequency=sorted_thresholds(8),
)
@pytest.mark.django_db
def test_rfm_grid_agrees_with_the_oracle(buyers, recency, frequency):
    with transaction.atomic():
        now = timezone.now()
        thresholds = RfmThresholds.objects.create(
            recency=recency, frequency=frequency, monetary=[], customers=1
        )
        buyers_write(buyers, now)

        grid = rfm_grid(now=now)

        expected: dict[tuple[int, int], tuple[int, Decimal]] = {}
        for orders, days, spent in buyers:
            if not orders:
                continue
            cell = scores_oracle(orders, days, thresholds)
            count, revenue = expected.get(cell, (0, Decimal("0")))
            expected[cell] = (count + 1, revenue + spent)
        assert grid.cells == expected
        assert grid.buyers == sum(1 for orders, _d, _s in buyers if orders)
        transaction.set_rollback(True)


def test_each_rfm_cell_links_to_its_customers(client, admin_user):
    now = timezone.now()
    RfmThresholds.objects.create(
        recency=[10, 30, 90, 180], frequency=[1, 2, 3, 5], monetary=[], customers=1
    )
    buyers_write([(1, 5, 10), (1, 6, 20), (4, 100, 30), (0, 0, 0)], now)
    client.force_login(admin_user)

    page = client.get(reverse("admin:index")).content.decode()
    listed = client.get(reverse("admin:crm_customer_changelist") + "?rfm_r=5&rfm_f=1")
    other = client.get(reverse("admin:crm_customer_changelist") + "?rfm_r=2&rfm_f=4")

    assert 'href="/admin/crm/customer/?rfm_r=5&amp;rfm_f=1">2</a>' in page
    assert listed.context["cl"].result_count == 2
    assert other.context["cl"].result_count == 1


def test_rfm_grid_without_thresholds_says_so(client, admin_user):
    client.force_login(admin_user)

    page = client.get(reverse("admin:index")).content.decode()

    assert "No RFM thresholds yet" in page


segment_st = st.fixed_dictionaries(
    {
        "size": st.integers(min_value=0, max_value=1000),
        "events": st.lists(
            st.tuples(
                st.sampled_from([SegmentEvent.Kind.ENTERED, SegmentEvent.Kind.EXITED]),
                st.integers(min_value=0, max_value=10),  # days ago
            ),
            max_size=6,
        ),
        "week_ago": st.none() | st.integers(min_value=0, max_value=1000),
        "active": st.booleans(),
    }
)


@HYPOTHESIS
@given(plans=st.lists(segment_st, max_size=5))
@pytest.mark.django_db
def test_segment_sizes_and_movements_agree_with_the_oracle(plans):
    with transaction.atomic():
        Segment.objects.update(is_active=False)
        now = timezone.now()
        today = timezone.localdate(now)
        customer = Customer.objects.create()
        segments = []
        for i, plan in enumerate(plans):
            segment = Segment.objects.create(
                name=f"S{i}", slug=f"s{i}", size=plan["size"], is_active=plan["active"]
            )
            segments.append(segment)
            for kind, days in plan["events"]:
                SegmentEvent.objects.create(
                    segment=segment,
                    customer=customer,
                    kind=kind,
                    cause=SegmentEvent.Cause.CONTACT,
                    occurred_at=now - timedelta(days=days, minutes=1),
                )
            if plan["week_ago"] is not None:
                SegmentSizeSnapshot.objects.create(
                    segment=segment,
                    date=today - timedelta(days=7),
                    size=plan["week_ago"],
                )

        figures = segment_figures(now=now)

        expected = {
            segment.pk: (
                plan["size"],
                sum(
                    1 for kind, days in plan["events"] if kind == "entered" and days < 7
                ),
                sum(
                    1 for kind, days in plan["events"] if kind == "exited" and days < 7
                ),
                plan["week_ago"],
            )
            for segment, plan in zip(segments, plans, strict=True)
            if plan["active"]
        }
        assert {
            trend.pk: (trend.size, trend.entered, trend.exited, trend.week_ago)
            for trend in figures.segments
        } == expected
        sizes = [trend.size for trend in figures.segments]
        assert sizes == sorted(sizes, reverse=True)
        transaction.set_rollback(True)


def test_segment_cards_take_a_fixed_number_of_queries(db, django_assert_num_queries):
    RfmThresholds.objects.create(
        recency=[10, 30, 90, 180], frequency=[1, 2, 3, 5], monetary=[], customers=1
    )
    now = timezone.now()

    with django_assert_num_queries(2):
        segment_figures(now=now)
    with django_assert_num_queries(2):
        rfm_grid(now=now)
