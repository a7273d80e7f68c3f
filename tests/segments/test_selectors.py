from datetime import date, timedelta

import pytest
from django.utils import timezone

from crm.models import Customer, Receipt, Tag
from crm.services import LineInput, receipt_record
from segments.compiler import context_build, rule_check, rule_condition
from segments.models import Segment
from segments.selectors import (
    customer_segment_list,
    segment_explain,
    segment_member_list,
    segment_overlaps,
    segment_preview,
)
from segments.services import recompute_all, segment_create
from tests.crm.factories import CustomerFactory
from tests.segments.factories import SegmentFactory, member_ids, membership_create

pytestmark = pytest.mark.django_db


def buy(store, customer, *, times=1, days_ago=0, sku="SHOE-1"):
    for _ in range(times):
        receipt_record(
            store=store,
            customer=customer,
            payment_method=Receipt.PaymentMethod.CARD,
            lines=[LineInput(sku, 1)],
            purchased_at=timezone.now() - timedelta(days=days_ago),
        )


@pytest.fixture
def shoppers(store, products):
    """A frequent buyer, a one-time buyer and a customer who never bought."""
    frequent = CustomerFactory(first_name="Fran", city="Delft")
    once = CustomerFactory(first_name="Olly", city="Utrecht")
    never = CustomerFactory(first_name="Nev", city="Utrecht")
    buy(store, frequent, times=3)
    buy(store, once, days_ago=45)
    return {"frequent": frequent, "once": once, "never": never}


def leaves(node):
    if node["kind"] in ("leaf", "segment") and "field" in node:
        yield node
    for child in node.get("children", []):
        yield from leaves(child)


# Preview -----------------------------------------------------------------------------


def test_preview_counts_what_the_whole_base_recompute_keeps(shoppers):
    rules = rule_check({"field": "orders", "op": "gte", "value": 1})
    segment = segment_create(name="Buyers", rules=rules)

    count, sample = segment_preview(rules=rules)
    recompute_all()

    assert count == 2
    assert {c.pk for c in sample} == {shoppers["frequent"].pk, shoppers["once"].pk}
    assert count == len(member_ids(segment))


def test_preview_sample_is_limited_and_saves_nothing(shoppers):
    rules = rule_check({"field": "city", "op": "eq", "value": "Utrecht"})
    segments_before = Segment.objects.count()

    count, sample = segment_preview(rules=rules, limit=1)

    assert count == 2
    assert len(sample) == 1
    assert Segment.objects.count() == segments_before


def test_preview_of_a_rule_nobody_matches_is_empty(shoppers):
    assert segment_preview(rules={"any": []}) == (0, [])


# Explain -----------------------------------------------------------------------------


def test_explain_shows_a_failing_comparison_with_the_customers_value(shoppers):
    segment = SegmentFactory(
        rules=rule_check(
            {
                "all": [
                    {"field": "orders", "op": "gte", "value": 2},
                    {"field": "city", "op": "eq", "value": "Utrecht"},
                ]
            }
        )
    )

    tree = segment_explain(customer=shoppers["once"], segment=segment)

    assert tree["kind"] == "all"
    assert tree["result"] is False
    orders, city = tree["children"]
    assert orders["kind"] == "leaf"
    assert orders["text"] == "orders >= 2"
    assert (orders["result"], orders["actual"]) == (False, 1)
    # The rule keeps the value as typed; the city is compared ignoring capitals.
    assert (city["field"], city["op"], city["value"]) == ("city", "eq", "Utrecht")
    assert (city["result"], city["actual"]) == (True, "utrecht")


def test_explain_not_of_a_missing_value_is_true_for_a_never_buyer(shoppers):
    segment = SegmentFactory(
        rules={"not": {"field": "last_purchase", "op": "within_days", "value": 30}}
    )

    tree = segment_explain(customer=shoppers["never"], segment=segment)

    assert tree["kind"] == "not"
    assert tree["result"] is True
    (leaf,) = tree["children"]
    assert leaf["text"] == "last_purchase within 30 days"
    assert leaf["result"] is False
    assert leaf["actual"] is None
    assert leaf["has_value"] is True


def test_explain_runs_one_query_for_all_leaves(shoppers, django_assert_max_num_queries):
    Tag.objects.create(name="B2B", slug="b2b")
    segment = SegmentFactory(
        rules=rule_check(
            {
                "any": [
                    {"field": "orders", "op": "gte", "value": 2},
                    {"field": "total_spent", "op": "gt", "value": 100},
                    {"not": {"field": "city", "op": "in", "value": ["Delft"]}},
                    {"field": "has_loyalty_card", "op": "eq", "value": True},
                    {"field": "days_since_last_purchase", "op": "lt", "value": 30},
                    {"field": "age", "op": "gte", "value": 18},
                    {"field": "tags", "op": "contains", "value": "b2b"},
                ]
            }
        )
    )
    customer = Customer.objects.get(pk=shoppers["frequent"].pk)
    ctx = context_build()

    with django_assert_max_num_queries(1):
        tree = segment_explain(customer=customer, segment=segment, ctx=ctx)
    # Without a prepared context, reading the RFM thresholds and the active
    # segments' rules adds two.
    with django_assert_max_num_queries(3):
        segment_explain(customer=customer, segment=segment)

    results = [leaf["result"] for leaf in leaves(tree)]
    assert results == [True, True, True, False, True, False, False]
    assert tree["result"] is True
    days = tree["children"][4]
    assert days["actual"] == 0
    tags = tree["children"][6]
    assert tags["has_value"] is False


def test_explain_shows_age_in_years(store):
    today = timezone.localdate()
    customer = CustomerFactory(birth_date=date(today.year - 30, 1, 1))
    segment = SegmentFactory(rules={"field": "age", "op": "lt", "value": 30})

    tree = segment_explain(customer=customer, segment=segment)

    assert (tree["result"], tree["actual"]) == (False, 30)


def test_explain_agrees_with_the_compiled_rule(shoppers):
    rules = [
        {"field": "orders", "op": "between", "value": [1, 2]},
        {"any": []},
        {"all": []},
        {"not": {"any": [{"field": "city", "op": "eq", "value": "Delft"}]}},
        {
            "any": [
                {"field": "last_purchase", "op": "before_days", "value": 30},
                {"field": "orders", "op": "is_set", "value": False},
            ]
        },
        {"field": "rfm_segment", "op": "eq", "value": "lost"},
    ]
    ctx = context_build()
    for rule in rules:
        checked = rule_check(rule)
        segment = SegmentFactory(rules=checked)
        matching = set(
            Customer.objects.filter(rule_condition(checked, ctx)).values_list(
                "pk", flat=True
            )
        )
        for customer in shoppers.values():
            tree = segment_explain(customer=customer, segment=segment, ctx=ctx)
            assert tree["result"] is (customer.pk in matching), (rule, customer)


def test_explain_nested_segment_shows_the_inner_rule(shoppers):
    SegmentFactory(slug="delft", rules={"field": "city", "op": "eq", "value": "delft"})
    outer = SegmentFactory(
        rules={
            "all": [
                {"field": "segment", "op": "in", "value": ["delft"]},
                {"field": "orders", "op": "gte", "value": 1},
            ]
        }
    )

    tree = segment_explain(customer=shoppers["frequent"], segment=outer)

    assert tree["result"] is True
    nested, _orders = tree["children"]
    assert nested["kind"] == "segment"
    assert nested["result"] is True
    assert nested["actual"] == ["delft"]
    (inner,) = nested["children"]
    assert inner["slug"] == "delft"
    assert inner["result"] is True
    assert inner["children"][0]["text"] == 'city = "delft"'
    assert inner["children"][0]["actual"] == "delft"

    other = segment_explain(customer=shoppers["once"], segment=outer)
    assert other["result"] is False
    assert other["children"][0]["result"] is False
    assert other["children"][0]["actual"] == []


# Members -----------------------------------------------------------------------------


def test_member_list_has_entry_times_newest_customers_first(db):
    built = timezone.now() - timedelta(days=5)
    segment = SegmentFactory(built_at=built)
    entered = membership_create(
        segment=segment, entered_at=timezone.now() - timedelta(days=2)
    )
    from_build = membership_create(segment=segment)
    membership_create()  # another segment

    members = list(segment_member_list(segment=segment))

    assert [m.pk for m in members] == [from_build.customer_id, entered.customer_id]
    assert members[0].entered_at == built  # found by the first build
    assert members[1].entered_at == entered.entered_at


def test_member_list_of_an_inactive_segment_is_empty(db):
    membership = membership_create(segment__is_active=False)

    assert list(segment_member_list(segment=membership.segment)) == []


def test_customer_segment_list_is_the_customers_current_segments(db):
    customer = CustomerFactory()
    vip = membership_create(customer=customer, segment__name="VIP").segment
    membership_create(segment__name="Other")

    assert list(customer_segment_list(customer=customer)) == [vip]


# Overlaps ----------------------------------------------------------------------------


def members(segment, customers):
    for customer in customers:
        membership_create(segment=segment, customer=customer)


def test_overlaps_finds_segments_sharing_almost_all_members_either_way(
    db, django_assert_max_num_queries
):
    people = CustomerFactory.create_batch(30)
    base = SegmentFactory(name="Base")
    members(base, people[:10])
    inside = SegmentFactory(name="Inside")  # all 9 members are in base
    members(inside, people[:9])
    around = SegmentFactory(name="Around")  # holds all of base and one more
    members(around, people[:11])
    partial = SegmentFactory(name="Partial")  # 5 of 25 shared
    members(partial, people[5:30])
    inactive = SegmentFactory(name="Inactive", is_active=False)
    members(inactive, people[:10])

    with django_assert_max_num_queries(3):
        overlaps = segment_overlaps(segment=base)

    assert [(s.name, round(share, 2)) for s, share in overlaps] == [
        ("Around", 1.0),
        ("Inside", 1.0),
    ]
    assert [
        (s.name, round(share, 2))
        for s, share in segment_overlaps(segment=partial, threshold=0.5)
    ] == [("Around", 0.55), ("Base", 0.5)]


def test_overlaps_of_an_empty_segment_are_none(db):
    assert segment_overlaps(segment=SegmentFactory()) == []
