"""Races between tills, on real PostgreSQL transactions in separate threads."""

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
from django.db import connection, connections

from crm.models import LoyaltyCard, LoyaltyTransaction, Product, Receipt
from crm.services import LineInput, points_earn, points_redeem, receipt_record

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs concurrent writers"
    ),
]


def run_concurrently(count: int, work) -> list:
    barrier = Barrier(count)

    def worker(index: int):
        barrier.wait()
        try:
            return work(index)
        except Exception as exc:  # collected, then asserted on
            return exc
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))


def test_twenty_concurrent_point_earnings_give_the_exact_sum(card):
    results = run_concurrently(
        20, lambda index: points_earn(card=card, points=index + 1)
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    card.refresh_from_db()
    assert card.points == sum(range(1, 21))
    assert LoyaltyTransaction.objects.filter(card=card).count() == 20


def test_concurrent_redemptions_never_overspend_the_balance(card):
    points_earn(card=card, points=100)

    results = run_concurrently(10, lambda _index: points_redeem(card=card, points=30))

    succeeded = [r for r in results if not isinstance(r, Exception)]
    assert len(succeeded) == 3
    card.refresh_from_db()
    assert card.points == 10
    assert LoyaltyCard.objects.get(pk=card.pk).points == sum(
        card.transactions.values_list("points", flat=True)
    )


def test_double_submitted_sale_from_two_tills_is_recorded_once(
    store, products, customer
):
    results = run_concurrently(
        8,
        lambda _index: receipt_record(
            store=store,
            customer=customer,
            payment_method="card",
            lines=[LineInput("SHOE-1", 1)],
            idempotency_key="double-click-42",
        ),
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.pk for r in results}) == 1
    assert Receipt.objects.count() == 1


def test_concurrent_sales_in_one_store_get_distinct_numbers(store, products):
    results = run_concurrently(
        10,
        lambda _index: receipt_record(
            store=store, payment_method="cash", lines=[LineInput("BAG-1", 1)]
        ),
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    assert len({r.number for r in results}) == 10


def test_concurrent_sales_of_the_same_products_in_any_order_all_take_stock(
    store, products
):
    orders = [
        ["SHOE-1", "SHOE-2", "BAG-1"],
        ["BAG-1", "SHOE-2", "SHOE-1"],
        ["SHOE-2", "BAG-1", "SHOE-1"],
    ]
    before = dict(Product.objects.values_list("sku", "stock_level"))

    results = run_concurrently(
        12,
        lambda index: receipt_record(
            store=store,
            payment_method="cash",
            lines=[LineInput(sku, 1) for sku in orders[index % 3]],
        ),
    )

    # Each sale locks its products in key order whatever the order of its lines,
    # so no two sales deadlock, and every sale's stock is taken.
    assert [r for r in results if isinstance(r, Exception)] == []
    after = dict(Product.objects.values_list("sku", "stock_level"))
    assert {sku: before[sku] - after[sku] for sku in before} == {
        "SHOE-1": 12,
        "SHOE-2": 12,
        "BAG-1": 12,
    }
    assert Receipt.objects.count() == 12
