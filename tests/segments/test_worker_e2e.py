"""End to end: a real Celery worker and Redis bring memberships up to date."""

import time

import pytest
import redis
from django.conf import settings
from django.db import connection

from crm.services import LineInput, receipt_record
from segments.models import CustomerSegmentState, SegmentEvent
from segments.services import segment_create
from tests.crm.factories import CustomerFactory
from tests.workers import wait_for, worker_start, worker_stop

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not settings.REDIS_URL or connection.vendor != "postgresql",
        reason="needs PostgreSQL and Redis (make test)",
    ),
]


@pytest.fixture
def worker():
    """A Celery worker process on the test database and the test Redis."""
    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    process = worker_start()
    try:
        yield process
    finally:
        worker_stop(process)
        redis.Redis.from_url(settings.REDIS_URL).flushdb()


def test_receipt_brings_the_customer_into_a_segment_through_a_real_worker(
    worker, store, products
):
    segment = segment_create(
        name="Repeat buyers", rules={"field": "orders", "op": "gte", "value": 2}
    )
    customer = CustomerFactory()
    receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
    )
    started = time.monotonic()

    second = receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("BAG-1", 1)],
    )

    member = wait_for(
        lambda: CustomerSegmentState.objects.filter(
            customer=customer, segment_ids__includes=segment.pk
        ).first()
    )
    assert member is not None, "the worker did not add the membership in time"
    assert time.monotonic() - started < 20
    entered = SegmentEvent.objects.get(segment=segment, customer=customer)
    assert entered.kind == "entered"
    assert entered.contact.receipt_id == second.pk
    assert wait_for(lambda: segment.__class__.objects.get(pk=segment.pk).size == 1)


def test_whole_base_recompute_runs_as_a_group_on_the_worker(worker, store, products):
    from crm import fanout
    from segments.tasks import recompute_dispatch

    buyers = [CustomerFactory() for _ in range(3)]
    for customer in buyers:
        receipt_record(
            store=store,
            customer=customer,
            payment_method="card",
            lines=[LineInput("SHOE-1", 1)],
        )
    browser = CustomerFactory()
    segment = segment_create(name="Buyers", query="orders >= 1")

    run, ranges = recompute_dispatch(chunk_size=2)

    assert ranges == 2
    state = fanout.wait(run, timeout=30)
    assert state.finished
    assert state.ranges_done == ranges
    members = set(
        CustomerSegmentState.objects.filter(
            segment_ids__includes=segment.pk
        ).values_list("customer_id", flat=True)
    )
    assert members == {c.pk for c in buyers}
    assert browser.pk not in members
    segment.refresh_from_db()
    assert segment.size == 3
    assert segment.built_at is not None
