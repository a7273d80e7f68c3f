"""The kept batch query (ids and clock left open) against a fresh ORM compile."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Customer
from crm.services import LineInput, receipt_record
from segments.compiler import context_build
from segments.fields import ClockAt
from segments.models import Segment
from segments.services import batch_sql, segment_create
from segments.services.engine import FAR_FUTURE, evaluation_queryset
from tests.crm.factories import CustomerFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the query is kept on PostgreSQL only (SQLite compiles per batch)",
    ),
]

QUERIES = [
    "last_purchase within 30 days",
    "last_purchase before 90 days",
    "orders >= 2 and last_purchase within 200 days",
    "not last_purchase within 10 days",
]
PURCHASE_DAYS = [1, 9, 11, 29, 31, 89, 91, 150, 199, 201, 400]


@pytest.fixture
def base(store, products):
    Segment.objects.update(is_active=False)
    segments = [
        segment_create(name=f"Rule {n}", query=query) for n, query in enumerate(QUERIES)
    ]
    customers = [CustomerFactory() for _ in PURCHASE_DAYS]
    for customer, days in zip(customers, PURCHASE_DAYS, strict=True):
        for extra in (0, 3):
            receipt_record(
                store=store,
                customer=customer,
                payment_method="card",
                lines=[LineInput("SHOE-1", 1)],
                purchased_at=timezone.now() - timedelta(days=days + extra),
            )
    CustomerFactory()  # never bought
    return segments, list(Customer.objects.values_list("pk", flat=True))


def build(segments):
    return lambda customers, ctx: evaluation_queryset(
        customers, segments=segments, ctx=ctx
    )


def fresh_rows(segments, ids, now):
    ctx = context_build(now=now, segment_rules={s.slug: s.rules for s in segments})
    return sorted(build(segments)(Customer.objects.filter(pk__in=ids), ctx))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    hours=st.floats(min_value=-240, max_value=240),
    picks=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_the_kept_query_gives_a_fresh_compiles_rows_at_any_clock_and_batch(
    base, hours, picks
):
    segments, all_ids = base
    ids = [pk for pk, picked in zip(all_ids, picks, strict=False) if picked]
    now = timezone.now() + timedelta(hours=hours)
    ctx = context_build(now=now, segment_rules={s.slug: s.rules for s in segments})

    kept = batch_sql.batch_rows(key=("test",), build=build(segments), ctx=ctx, ids=ids)

    assert sorted(kept) == fresh_rows(segments, ids, now)


def test_no_moment_of_the_clock_is_compiled_into_the_kept_query(base):
    segments, ids = base
    ctx = context_build(
        now=timezone.now(), segment_rules={s.slug: s.rules for s in segments}
    )

    batch_sql.batch_rows(key=("clock",), build=build(segments), ctx=ctx, ids=ids)

    (query,) = batch_sql._kept.values()
    # The only datetime left is the constant standing for "no flip ahead".
    assert {p for p in query.params if isinstance(p, datetime)} <= {FAR_FUTURE}
    offsets = {p.offset for p in query.params if isinstance(p, ClockAt)}
    # The rules' moments (30, 90, 200 and 10 days ago) and "now" for next checks.
    assert {timedelta(days=-d) for d in (30, 90, 200, 10)} <= offsets
    assert timedelta(0) in offsets
    assert query.params.count(batch_sql.BATCH_IDS) == 1
