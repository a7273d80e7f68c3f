"""A sale adds itself to the statistics; the result must equal a full recompute."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import CustomerCategoryStats, CustomerStats, Receipt
from crm.services import LineInput, customer_stats_refresh, receipt_record
from tests.crm.factories import CustomerFactory

from .test_concurrency import run_concurrently

SKUS = ["SHOE-1", "SHOE-2", "BAG-1"]

line_st = st.builds(
    LineInput,
    sku=st.sampled_from(SKUS),
    quantity=st.integers(min_value=1, max_value=4),
    unit_price=st.one_of(
        st.none(),
        st.decimals(min_value=0, max_value=500, places=2, allow_nan=False),
    ),
    discount=st.just(Decimal("0")),
)
sale_st = st.fixed_dictionaries(
    {
        # Days back, in any order: tills send late sales too.
        "days_ago": st.integers(min_value=0, max_value=400),
        "channel": st.sampled_from(["store", "online", "phone"]),
        "lines": st.lists(line_st, min_size=1, max_size=4),
    }
)


def snapshot(customer_ids):
    stats = {
        row["customer_id"]: {k: v for k, v in row.items() if k != "updated_at"}
        for row in CustomerStats.objects.filter(customer_id__in=customer_ids).values()
    }
    categories = set(
        CustomerCategoryStats.objects.filter(customer_id__in=customer_ids).values_list(
            "customer_id",
            "category_id",
            "orders",
            "quantity",
            "spent",
            "last_purchase_at",
        )
    )
    return stats, categories


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    histories=st.lists(
        st.lists(sale_st, min_size=1, max_size=6), min_size=1, max_size=3
    ),
    blank_stats_row=st.booleans(),
)
def test_sales_added_one_by_one_equal_a_full_recompute(
    store, products, histories, blank_stats_row
):
    now = timezone.now()
    with transaction.atomic():
        customers = []
        for history in histories:
            # With a blank statistics row (as registration leaves it) or none.
            customer = (
                CustomerFactory() if blank_stats_row else CustomerFactory(stats=None)
            )
            customers.append(customer.pk)
            for sale in history:
                receipt_record(
                    store=store,
                    customer=customer,
                    payment_method="card",
                    channel=sale["channel"],
                    purchased_at=now - timedelta(days=sale["days_ago"]),
                    lines=sale["lines"],
                )
        added = snapshot(customers)
        customer_stats_refresh(customer_ids=customers)
        recomputed = snapshot(customers)

        assert added == recomputed
        assert {c: s["orders"] for c, s in added[0].items()} == {
            c: len(h) for c, h in zip(customers, histories, strict=True)
        }
        transaction.set_rollback(True)


def test_a_sale_of_a_customer_without_statistics_row_creates_it(store, products):
    customer = CustomerFactory(stats=None)

    receipt_record(
        store=store,
        customer=customer,
        payment_method="cash",
        channel="online",
        lines=[LineInput("SHOE-1", 2), LineInput("BAG-1", 1)],
    )

    stats = CustomerStats.objects.get(customer=customer)
    assert (stats.orders, stats.total_spent, stats.avg_order_value) == (
        1,
        Decimal("144.40"),
        Decimal("144.40"),
    )
    assert stats.preferred_purchase_channel == "online"
    assert stats.favourite_category.slug == "shoes"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers")
def test_concurrent_sales_of_one_customer_all_count(store, products):
    customer = CustomerFactory()

    results = run_concurrently(
        8,
        lambda index: receipt_record(
            store=store,
            customer=customer,
            payment_method="card",
            lines=[LineInput("BAG-1", index + 1)],
        ),
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    stats = CustomerStats.objects.get(customer=customer)
    total = sum(r.total for r in Receipt.objects.filter(customer=customer))
    assert (stats.orders, stats.total_spent) == (8, total)
    assert stats.total_spent == Decimal("24.50") * sum(range(1, 9))
