"""Whole-base work in customer-id ranges, run as a Celery group."""

import itertools

import pytest

from crm import fanout
from crm.models import CustomerCategoryStats, CustomerStats
from crm.services import LineInput, customer_stats_rebuild, receipt_record
from crm.tasks import stats_rebuild_dispatch
from tests.crm.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_ranges_cover_every_customer_id_once():
    customers = CustomerFactory.create_batch(7)
    first, last = customers[0].pk, customers[-1].pk

    ranges = fanout.customer_id_ranges(3)

    assert ranges[0][0] == first
    assert ranges[-1][1] == last
    assert all(high - low + 1 <= 3 for low, high in ranges)
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))


def test_default_ranges_are_few_large_and_equal(monkeypatch):
    CustomerFactory.create_batch(3)
    # A small base is one range: each range has a fixed cost.
    assert len(fanout.customer_id_ranges()) == 1

    CustomerFactory.create_batch(8)
    monkeypatch.setattr(fanout, "MIN_RANGE", 5)
    # 11 ids make two ranges of 6 and 5, not 5 + 5 + a remainder of 1.
    ranges = fanout.customer_id_ranges()
    assert [high - low + 1 for low, high in ranges] == [6, 5]


def test_no_customers_means_no_ranges_and_a_finished_run(eager_celery):
    run, ranges = stats_rebuild_dispatch()

    assert ranges == 0
    assert fanout.progress(run).finished


def test_statistics_rebuilt_by_range_tasks_equal_the_in_process_rebuild(
    eager_celery, store, products
):
    customers = CustomerFactory.create_batch(5)
    for index, customer in enumerate(customers):
        receipt_record(
            store=store,
            customer=customer,
            payment_method="card",
            lines=[LineInput("SHOE-1", 1 + index), LineInput("BAG-1", 1)],
        )

    def snapshot():
        return (
            sorted(
                CustomerStats.objects.values_list(
                    "customer_id", "orders", "total_spent", "favourite_category_id"
                )
            ),
            sorted(
                CustomerCategoryStats.objects.values_list(
                    "customer_id", "category_id", "quantity", "spent"
                )
            ),
        )

    customer_stats_rebuild()
    expected = snapshot()
    CustomerStats.objects.all().delete()
    CustomerCategoryStats.objects.all().delete()

    run, ranges = stats_rebuild_dispatch(chunk_size=2)

    assert ranges == 3
    state = fanout.wait(run, timeout=5)
    assert (state.ranges_done, state.finished) == (3, True)
    assert snapshot() == expected


def test_rebuild_commands_follow_their_ranges_on_the_workers(
    eager_celery, store, products
):
    import io

    from django.core.management import call_command

    customer = CustomerFactory()
    receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("SHOE-1", 2)],
    )
    CustomerStats.objects.all().delete()
    out = io.StringIO()

    call_command("rebuild_stats", "--workers", stdout=out, stderr=io.StringIO())
    call_command("rebuild_segments", "--workers", stdout=out, stderr=io.StringIO())

    assert CustomerStats.objects.get(customer=customer).orders == 1
    assert "Rebuilt statistics" in out.getvalue()
    assert "Segments built for the first time" in out.getvalue()


def test_a_failed_range_fails_the_run_at_once_without_quoting_data():
    import uuid

    run = uuid.uuid4().hex
    with (
        pytest.raises(ValueError, match=r"secret@example\.com"),
        fanout.range_failure_reported(run, 1, 50),
    ):
        raise ValueError("duplicate key secret@example.com")

    with pytest.raises(fanout.RunFailed) as exc:
        fanout.wait(run, timeout=5)

    assert "customer ids 1-50: ValueError" in str(exc.value)
    assert "secret" not in str(exc.value)
