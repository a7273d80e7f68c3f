import statistics
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Customer
from crm.services import LineInput, contact_record, customer_update, receipt_record
from segments.compiler import context_build, rule_condition
from segments.fields import rfm_segment_of
from segments.models import (
    CustomerSegmentState,
    DirtyCustomer,
    Segment,
    SegmentEvent,
)
from segments.selectors import customer_segment_list, segment_member_list
from segments.services import (
    dirty_drain,
    due_refresh,
    memberships_refresh,
    recompute_all,
    rfm_thresholds_compute,
    segment_create,
    segment_update,
)
from segments.services.engine import birthdays_refresh
from tests.crm.factories import CustomerFactory
from tests.segments.factories import member_ids

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def only_test_segments(db):
    # The default RFM segments would join every buyer; these tests make their own.
    Segment.objects.update(is_active=False)


def members(segment: Segment) -> set[int]:
    return member_ids(segment)


def buy(store, customer, *, days_ago: float = 0, sku: str = "SHOE-1"):
    return receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput(sku, 1)],
        purchased_at=timezone.now() - timedelta(days=days_ago),
    )


# Time path


def test_lapsed_rule_flips_when_its_moment_passes_without_any_contact(store, products):
    lapsed = segment_create(name="Lapsed", query="last_purchase before 90 days")
    customer = CustomerFactory()
    purchase = buy(store, customer, days_ago=89)
    dirty_drain()
    assert members(lapsed) == set()
    state = CustomerSegmentState.objects.get(customer=customer)
    flips_at = purchase.purchased_at + timedelta(days=90)
    assert state.next_check_at == flips_at

    assert due_refresh(now=flips_at - timedelta(minutes=1)) == 0
    assert members(lapsed) == set()

    assert due_refresh(now=flips_at + timedelta(seconds=1)) == 1
    assert members(lapsed) == {customer.pk}
    event = SegmentEvent.objects.get(segment=lapsed)
    assert (event.kind, event.cause) == ("entered", "time")
    state.refresh_from_db()
    assert state.next_check_at is None


def test_time_path_only_touches_customers_whose_moment_has_come(store, products):
    segment_create(name="Recent", query="last_purchase within 30 days")
    early, late, never = CustomerFactory(), CustomerFactory(), CustomerFactory()
    buy(store, early, days_ago=29)
    buy(store, late, days_ago=5)
    dirty_drain()

    processed = due_refresh(now=timezone.now() + timedelta(days=2))

    assert processed == 1
    assert not CustomerSegmentState.objects.filter(
        customer=never, next_check_at__isnull=False
    ).exists()


def test_age_rule_changes_on_the_birthday(store):
    adults = segment_create(name="Adults", query="age >= 18")
    today = timezone.localdate()
    born = today.replace(year=today.year - 18) + timedelta(days=1)
    customer = CustomerFactory(birth_date=born)
    recompute_all()
    assert members(adults) == set()

    birthday = timezone.now() + timedelta(days=1)
    assert birthdays_refresh(now=birthday) == 1

    assert members(adults) == {customer.pk}


# Incremental path


def test_burst_of_contacts_for_one_customer_is_evaluated_once(customer):
    for _ in range(5):
        contact_record(customer=customer, kind="web_visit", channel="online")

    assert DirtyCustomer.objects.count() == 1
    last = customer.contacts.order_by("-id").first()
    assert DirtyCustomer.objects.get().contact_id == last.pk
    assert dirty_drain() == 1
    assert dirty_drain() == 0


def test_evaluating_twice_changes_nothing_the_second_time(store, products):
    repeat = segment_create(name="Repeat", query="orders >= 2")
    customer = CustomerFactory()
    buy(store, customer)
    buy(store, customer)
    dirty_drain()
    events = SegmentEvent.objects.count()

    assert memberships_refresh(customer_ids=[customer.pk]) == (0, 0)
    assert memberships_refresh(customer_ids=[customer.pk]) == (0, 0)

    assert SegmentEvent.objects.count() == events
    assert members(repeat) == {customer.pk}
    assert Segment.objects.get(pk=repeat.pk).size == 1


def test_history_names_the_contact_that_moved_the_customer(store, products):
    repeat = segment_create(name="Repeat", query="orders >= 2")
    customer = CustomerFactory()
    buy(store, customer)
    dirty_drain()
    second = buy(store, customer, sku="BAG-1")
    dirty_drain()

    event = SegmentEvent.objects.get(segment=repeat)
    assert event.contact.receipt == second
    (entry,) = segment_member_list(segment=repeat)
    assert entry.entered_at == event.occurred_at


def test_contact_recorded_while_redis_is_down_is_not_forgotten(
    settings, customer, django_capture_on_commit_callbacks
):
    segment = segment_create(name="Visitors", query="contacts_30d >= 1")
    # A Redis nobody listens on: scheduling the drain fails after commit.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }

    with django_capture_on_commit_callbacks(execute=True):
        contact_record(customer=customer, kind="web_visit", channel="online")

    assert DirtyCustomer.objects.filter(customer=customer).exists()
    assert members(segment) == set()
    # The periodic sweep drains it once Redis is back.
    assert dirty_drain() == 1
    assert members(segment) == {customer.pk}


def test_profile_change_moves_the_customer(customer):
    delft = segment_create(name="Delft", query='city = "Delft"')

    customer_update(customer=customer, city="delft")
    dirty_drain()

    assert members(delft) == {customer.pk}


def test_batch_evaluation_queries_do_not_grow_with_the_batch(store, products):
    segment_create(name="Repeat", query='orders >= 2 and city in ("Utrecht")')
    segment_create(name="Recent", query="last_purchase within 30 days")
    small = [CustomerFactory() for _ in range(3)]
    large = [CustomerFactory() for _ in range(40)]
    for customer in small + large:
        buy(store, customer)
    DirtyCustomer.objects.all().delete()
    # The first batch compiles the query for this set of segments; later ones reuse it.
    memberships_refresh(customer_ids=[small[0].pk])

    with CaptureQueriesContext(connection) as few:
        memberships_refresh(customer_ids=[c.pk for c in small])
    with CaptureQueriesContext(connection) as many:
        memberships_refresh(customer_ids=[c.pk for c in large])

    assert len(many) == len(few)
    assert len(many) <= 15


# Whole-base path


def test_recompute_right_after_another_writes_nothing(store, products):
    segment_create(name="Repeat", query="orders >= 2")
    for _ in range(3):
        customer = CustomerFactory()
        buy(store, customer)
        buy(store, customer)
    assert recompute_all() > 0
    events = SegmentEvent.objects.count()

    with CaptureQueriesContext(connection) as queries:
        changed = recompute_all()

    assert changed == 0
    assert SegmentEvent.objects.count() == events
    writes = [
        q["sql"]
        for q in queries
        if q["sql"]
        .lstrip()
        .upper()
        .startswith(('INSERT INTO "SEGMENTS_SEGMENTEVENT', "DELETE"))
    ]
    assert writes == []


def test_deactivated_segment_loses_its_members_and_is_built_anew(customer):
    everyone = segment_create(name="Everyone", query="true")
    recompute_all()
    assert members(everyone) == {customer.pk}

    segment_update(segment=everyone, is_active=False)

    # Readers see no members at once; the next pass drops the id from the arrays.
    assert list(segment_member_list(segment=everyone)) == []
    assert customer_segment_list(customer=customer).count() == 0
    everyone.refresh_from_db()
    assert (everyone.size, everyone.built_at) == (0, None)
    recompute_all()
    assert members(everyone) == set()
    # Leaving was the segment's change: no history row per member.
    assert not SegmentEvent.objects.filter(segment=everyone).exists()

    segment_update(segment=everyone, is_active=True)
    recompute_all()
    assert members(everyone) == {customer.pk}
    assert Segment.objects.get(pk=everyone.pk).built_at is not None


def test_first_build_sets_built_at_and_later_passes_write_history(store, products):
    shopper, later = CustomerFactory(), CustomerFactory()
    buy(store, shopper)
    buyers = segment_create(name="Buyers", query="orders >= 1")
    DirtyCustomer.objects.all().delete()
    built = timezone.now()

    recompute_all(now=built)

    buyers.refresh_from_db()
    assert buyers.built_at == built
    assert members(buyers) == {shopper.pk}
    assert not SegmentEvent.objects.filter(segment=buyers).exists()
    (member,) = segment_member_list(segment=buyers)
    assert member.entered_at == built

    buy(store, later)
    DirtyCustomer.objects.all().delete()
    recompute_all()

    assert members(buyers) == {shopper.pk, later.pk}
    event = SegmentEvent.objects.get(segment=buyers)
    assert (event.customer_id, event.kind, event.cause) == (
        later.pk,
        "entered",
        "recompute",
    )
    assert Segment.objects.get(pk=buyers.pk).size == 2


def test_nested_segment_follows_the_inner_rule(store, products):
    segment_create(name="Buyers", slug="buyers", query="orders >= 1")
    nested = segment_create(
        name="Utrecht buyers", query='segment in ("buyers") and city = "Utrecht"'
    )
    buyer, browser = CustomerFactory(city="Utrecht"), CustomerFactory(city="Utrecht")
    buy(store, buyer)
    recompute_all()

    assert members(nested) == {buyer.pk}
    assert browser.pk not in members(nested)


def test_a_segment_that_would_contain_itself_is_refused():
    outer = segment_create(name="Outer", query="orders >= 1")
    segment_create(name="Inner", slug="inner", query='segment in ("outer")')

    with pytest.raises(ValidationError) as exc:
        segment_update(segment=outer, query='segment in ("inner")')

    assert "would contain itself" in str(exc.value)
    outer.refresh_from_db()
    assert outer.rules == {"field": "orders", "op": "gte", "value": 1}


def test_rule_errors_point_at_the_problem():
    with pytest.raises(ValidationError) as exc:
        segment_create(
            name="Bad", rules={"all": [{"field": "shoe_size", "op": "eq", "value": 42}]}
        )
    assert "all[0].field" in str(exc.value)

    with pytest.raises(ValidationError) as exc:
        segment_create(name="Bad", query="orders >= ")
    assert "column" in str(exc.value)
    assert not Segment.objects.filter(name="Bad").exists()


# RFM


def test_rfm_thresholds_and_scores_match_an_independent_computation(store, products):
    now = timezone.now()
    plans = [(days, count) for days in (1, 10, 40, 100, 200, 400) for count in (1, 3)]
    customers = []
    for days, count in plans:
        customer = CustomerFactory()
        for i in range(count):
            buy(store, customer, days_ago=days + i + 0.25)
        customers.append(customer)
    CustomerFactory()  # never bought: no score

    thresholds = rfm_thresholds_compute(now=now)

    stats = {c.pk: c.stats for c in Customer.objects.select_related("stats")}
    days_since = {
        pk: int((now - s.last_purchase_at).total_seconds() // 86400)
        for pk, s in stats.items()
        if s.orders
    }
    orders = {pk: s.orders for pk, s in stats.items() if s.orders}
    spent = {pk: float(s.total_spent) for pk, s in stats.items() if s.orders}

    def quintiles(values):
        return statistics.quantiles(sorted(values), n=5, method="inclusive")

    assert thresholds.recency == pytest.approx(quintiles(days_since.values()))
    assert thresholds.frequency == pytest.approx(quintiles(orders.values()))
    assert thresholds.monetary == pytest.approx(quintiles(spent.values()))

    ctx = context_build(now=now)
    expected_segments = {}
    for pk in orders:
        r = 1 + sum(t > days_since[pk] for t in thresholds.recency)
        f = 1 + sum(t < orders[pk] for t in thresholds.frequency)
        m = 1 + sum(t < spent[pk] for t in thresholds.monetary)
        for name, score in (
            ("rfm_recency", r),
            ("rfm_frequency", f),
            ("rfm_monetary", m),
        ):
            rule = {"field": name, "op": "eq", "value": score}
            assert Customer.objects.filter(rule_condition(rule, ctx), pk=pk).exists()
        expected_segments.setdefault(rfm_segment_of(r, f, m), set()).add(pk)
    for name, pks in expected_segments.items():
        rule = {"field": "rfm_segment", "op": "eq", "value": name}
        matched = set(
            Customer.objects.filter(rule_condition(rule, ctx)).values_list(
                "pk", flat=True
            )
        )
        assert matched == pks, name
    never = {"field": "rfm_recency", "op": "is_set", "value": False}
    assert Customer.objects.filter(rule_condition(never, ctx)).count() == 1
    assert Decimal(str(thresholds.monetary[0])) > 0


@pytest.mark.parametrize("path", ["incremental", "whole_base"])
def test_entering_a_segment_queues_a_signed_webhook_delivery(path, store, products):
    from crm.webhooks.models import WebhookDelivery
    from crm.webhooks.services import webhook_subscription_create

    repeat = segment_create(name="Repeat", slug="repeat", query="orders >= 2")
    recompute_all()  # built, so later passes write history
    webhook_subscription_create(
        name="Ad platform",
        url="https://ads.example.com/hooks",
        events=["segment.entered"],
    )
    customer = CustomerFactory()
    buy(store, customer)
    buy(store, customer)

    if path == "incremental":
        dirty_drain()
    else:
        DirtyCustomer.objects.all().delete()
        recompute_all()

    assert members(repeat) == {customer.pk}
    delivery = WebhookDelivery.objects.get()
    assert delivery.event == "segment.entered"


def test_many_changes_in_one_transaction_start_one_recompute(
    django_capture_on_commit_callbacks,
):
    from django.db import transaction

    with django_capture_on_commit_callbacks() as callbacks, transaction.atomic():
        for number in range(3):
            segment_create(name=f"Batch {number}", query="orders >= 1")

    assert len(callbacks) == 1


def test_marking_keeps_the_first_mark_time_and_the_newest_named_contact(store):
    from crm.models import Contact
    from crm.services.contacts import ContactRef
    from segments.models import DirtyCustomer
    from segments.services.engine import customers_mark_dirty

    first, second = CustomerFactory(), CustomerFactory()
    older, newer = (
        contact_record(customer=first, kind=Contact.Kind.EMAIL_OPEN, channel="email")
        for _ in range(2)
    )
    DirtyCustomer.objects.all().delete()
    customers_mark_dirty(contacts=[ContactRef(first.pk, older.pk)])
    marked_at = DirtyCustomer.objects.get(customer=first).marked_at

    # A later batch: a newer contact, a change without one (a profile edit), and a
    # second customer marked without a contact.
    customers_mark_dirty(
        contacts=[
            ContactRef(first.pk, newer.pk),
            ContactRef(first.pk, None),
            ContactRef(second.pk, None),
        ]
    )
    customers_mark_dirty(contacts=[ContactRef(first.pk, None)])

    rows = {
        row.customer_id: (row.contact_id, row.marked_at)
        for row in DirtyCustomer.objects.all()
    }
    assert rows[first.pk] == (newer.pk, marked_at)
    assert rows[second.pk][0] is None
    assert set(rows) == {first.pk, second.pk}
