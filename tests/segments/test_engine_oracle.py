"""Segment membership checked against an independent plain-Python oracle.

Random customers, purchases and contacts are recorded through the CRM services, one
by one, with the incremental path draining after each; random rule trees are then
evaluated (a) as the incremental path left them, (b) by a whole-base recompute and
(c) by the oracle below, which reads only the generated plan, never the database.
"""

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.models import Customer, Tag
from crm.services import (
    LineInput,
    consent_record,
    contact_record,
    customer_create,
    loyalty_card_issue,
    points_earn,
    receipt_record,
    receipt_void,
)
from segments.models import Segment
from segments.services import dirty_drain, recompute_all, segment_create
from tests.crm.factories import CategoryFactory, ProductFactory, StoreFactory
from tests.segments.factories import memberships

CITIES = ["Utrecht", "Delft", "Amsterdam"]
CATEGORIES = ["shoes", "bags", "toys"]
PRICES = {"shoes": Decimal("60.00"), "bags": Decimal("25.50"), "toys": Decimal("9.95")}
TAGS = ["b2b", "outdoor"]


# The plan ---------------------------------------------------------------------------


@dataclass
class PlannedReceipt:
    days_ago: int
    category: str
    quantity: int
    channel: str
    voided: bool


@dataclass
class PlannedCustomer:
    city: str
    gender: str
    age_days: int | None  # birth date as days before today
    tags: list[str]
    receipts: list[PlannedReceipt]
    email_opens: list[int]  # days ago
    email_consent: bool | None
    card_points: int | None  # None: no card
    facts: dict = field(default_factory=dict)


receipts_st = st.builds(
    PlannedReceipt,
    days_ago=st.integers(0, 400),
    category=st.sampled_from(CATEGORIES),
    quantity=st.integers(1, 3),
    channel=st.sampled_from(["store", "online"]),
    voided=st.sampled_from([False, False, False, True]),
)
customers_st = st.builds(
    PlannedCustomer,
    city=st.sampled_from(CITIES),
    gender=st.sampled_from(["f", "m", ""]),
    age_days=st.none() | st.integers(15 * 365, 70 * 365),
    tags=st.lists(st.sampled_from(TAGS), unique=True, max_size=2),
    receipts=st.lists(receipts_st, max_size=4),
    email_opens=st.lists(st.integers(0, 60), max_size=3),
    email_consent=st.none() | st.booleans(),
    card_points=st.none() | st.integers(0, 300),
)

# Random rules -------------------------------------------------------------------------

leaf_st = st.one_of(
    st.builds(
        lambda op, n: {"field": "orders", "op": op, "value": n},
        st.sampled_from(["eq", "ne", "lt", "lte", "gt", "gte"]),
        st.integers(0, 4),
    ),
    st.builds(
        lambda low, span: {
            "field": "total_spent",
            "op": "between",
            "value": [low, low + span],
        },
        st.integers(0, 150),
        st.integers(0, 150),
    ),
    st.builds(
        lambda op, n: {"field": "avg_order_value", "op": op, "value": n},
        st.sampled_from(["gt", "lte"]),
        st.integers(10, 100),
    ),
    st.builds(
        lambda op, n: {"field": "last_purchase", "op": op, "value": n},
        st.sampled_from(["within_days", "before_days"]),
        st.sampled_from([7, 30, 90, 365]),
    ),
    st.builds(
        lambda op, n: {"field": "days_since_last_purchase", "op": op, "value": n},
        st.sampled_from(["gte", "lt", "eq"]),
        st.sampled_from([0, 30, 90]),
    ),
    st.builds(
        lambda op, cities: {"field": "city", "op": op, "value": cities},
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from([*CITIES, "utrecht"]), min_size=1, max_size=2),
    ),
    st.builds(
        lambda g: {"field": "gender", "op": "eq", "value": g},
        st.sampled_from(["f", "m"]),
    ),
    st.builds(
        lambda op, n: {"field": "age", "op": op, "value": n},
        st.sampled_from(["gte", "lt", "between"]),
        st.integers(18, 60),
    ).map(
        lambda r: (
            {**r, "value": [r["value"], r["value"] + 10]} if r["op"] == "between" else r
        )
    ),
    st.builds(
        lambda t: {"field": "tags", "op": "contains", "value": t}, st.sampled_from(TAGS)
    ),
    st.builds(
        lambda c: {"field": "categories_bought", "op": "contains", "value": c},
        st.sampled_from(CATEGORIES),
    ),
    st.builds(
        lambda c, d: {
            "field": "bought_category_within_days",
            "op": "eq",
            "value": {"category": c, "days": d},
        },
        st.sampled_from(CATEGORIES),
        st.sampled_from([30, 180]),
    ),
    st.builds(
        lambda c: {"field": "favourite_category", "op": "eq", "value": c},
        st.sampled_from(CATEGORIES),
    ),
    st.builds(
        lambda c: {"field": "purchase_channel", "op": "eq", "value": c},
        st.sampled_from(["store", "online"]),
    ),
    st.builds(
        lambda n: {"field": "email_opens_30d", "op": "gte", "value": n},
        st.integers(1, 2),
    ),
    st.builds(
        lambda b: {"field": "email_consent", "op": "eq", "value": b}, st.booleans()
    ),
    st.builds(
        lambda b: {"field": "has_loyalty_card", "op": "eq", "value": b}, st.booleans()
    ),
    st.builds(
        lambda n: {"field": "loyalty_points", "op": "gte", "value": n},
        st.integers(0, 400),
    ),
)
rules_st = st.recursive(
    leaf_st,
    lambda children: st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, max_size=3)),
        st.builds(lambda xs: {"any": xs}, st.lists(children, max_size=3)),
        st.builds(lambda x: {"not": x}, children),
    ),
    max_leaves=5,
)


# The oracle ---------------------------------------------------------------------------


def facts_of(plan: PlannedCustomer, now: datetime, today: date) -> dict:
    """Everything the rules look at, computed from the plan alone."""
    kept = [r for r in plan.receipts if not r.voided]
    totals = [PRICES[r.category] * r.quantity for r in kept]
    last_days = min((r.days_ago for r in kept), default=None)
    spent_by_category: dict[str, Decimal] = {}
    for receipt, total in zip(kept, totals, strict=True):
        spent_by_category[receipt.category] = (
            spent_by_category.get(receipt.category, Decimal(0)) + total
        )
    favourite = (
        sorted(
            spent_by_category.items(), key=lambda kv: (-kv[1], CATEGORIES_BY_ID[kv[0]])
        )[0][0]
        if spent_by_category
        else None
    )
    channels = [r.channel for r in kept]
    channel = None
    if channels:
        in_store, online = channels.count("store"), channels.count("online")
        channel = "store" if in_store >= online else "online"
    age = None
    if plan.age_days is not None:
        born = today - timedelta(days=plan.age_days)
        age = (
            today.year - born.year - ((today.month, today.day) < (born.month, born.day))
        )
    return {
        "orders": len(kept),
        "total_spent": sum(totals, Decimal(0)),
        "avg_order_value": (sum(totals) / len(kept)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
        if kept
        else None,
        # Purchases happen at noon-ish offsets, so whole days are unambiguous.
        "last_purchase_days": last_days,
        "city": plan.city.lower(),
        "gender": plan.gender or None,
        "age": age,
        "tags": set(plan.tags),
        "categories": {r.category for r in kept},
        "category_last_days": {
            c: min(r.days_ago for r in kept if r.category == c)
            for c in {r.category for r in kept}
        },
        "favourite_category": favourite,
        "purchase_channel": channel,
        "email_opens_30d": sum(1 for d in plan.email_opens if d < 30),
        "email_consent": bool(plan.email_consent),
        "has_card": plan.card_points is not None,
        "loyalty_points": (
            plan.card_points + sum(int(t) for t in totals)
            if plan.card_points is not None
            else None
        ),
    }


def compare(actual, op: str, value) -> bool:
    if actual is None:
        return False
    return {
        "eq": lambda: actual == value,
        "ne": lambda: actual != value,
        "lt": lambda: actual < value,
        "lte": lambda: actual <= value,
        "gt": lambda: actual > value,
        "gte": lambda: actual >= value,
        "between": lambda: value[0] <= actual <= value[1],
        "in": lambda: actual in value,
        "not_in": lambda: actual not in value,
    }[op]()


def oracle(rule: dict, f: dict) -> bool:
    if "all" in rule:
        return all(oracle(child, f) for child in rule["all"])
    if "any" in rule:
        return any(oracle(child, f) for child in rule["any"])
    if "not" in rule:
        return not oracle(rule["not"], f)
    name, op, value = rule["field"], rule["op"], rule["value"]
    match name:
        case "last_purchase":
            days = f["last_purchase_days"]
            if days is None:
                return False
            return days < value if op == "within_days" else days >= value
        case "days_since_last_purchase":
            return compare(f["last_purchase_days"], op, value)
        case "city":
            return compare(f["city"], op, [v.lower() for v in value])
        case "tags":
            return value in f["tags"]
        case "categories_bought":
            return value in f["categories"]
        case "bought_category_within_days":
            days = f["category_last_days"].get(value["category"])
            return days is not None and days < value["days"]
        case "email_consent":
            return f["email_consent"] == value
        case "has_loyalty_card":
            return f["has_card"] == value
        case "loyalty_points":
            return compare(f["loyalty_points"], op, value)
        case "email_opens_30d":
            return compare(f["email_opens_30d"], op, value)
        case "total_spent":
            return compare(f["total_spent"], op, [Decimal(v) for v in value])
        case _:
            return compare(f[name], op, value)


CATEGORIES_BY_ID: dict[str, int] = {}


# The test ---------------------------------------------------------------------------


@pytest.fixture
def catalogue(db):
    store = StoreFactory(code="ams")
    # Rules may name only tags that exist, even ones no customer has.
    Tag.objects.bulk_create([Tag(name=slug, slug=slug) for slug in TAGS])
    products = {}
    for slug in CATEGORIES:
        category = CategoryFactory(slug=slug, name=slug.title())
        CATEGORIES_BY_ID[slug] = category.pk
        products[slug] = ProductFactory(
            sku=slug.upper(), category=category, price=PRICES[slug]
        )
    return store, products


def record(plan: PlannedCustomer, index: int, store, now: datetime) -> Customer:
    """Replay one planned customer through the services, draining after each step."""
    today = timezone.localdate(now)
    customer = customer_create(
        email=f"c{index}@example.com",
        city=plan.city,
        gender=plan.gender,
        birth_date=today - timedelta(days=plan.age_days) if plan.age_days else None,
        tags=plan.tags,
    )
    dirty_drain()
    card = None
    if plan.card_points is not None:
        card = loyalty_card_issue(customer=customer, store=store)
        if plan.card_points:
            points_earn(card=card, points=plan.card_points)
        dirty_drain()
    if plan.email_consent is not None:
        consent_record(
            customer=customer,
            channel="email",
            granted=plan.email_consent,
            source="store",
            wording="Email me offers",
        )
        dirty_drain()
    for receipt in sorted(plan.receipts, key=lambda r: -r.days_ago):
        recorded = receipt_record(
            store=store,
            customer=customer,
            loyalty_card=card,
            channel=receipt.channel,
            payment_method="card",
            lines=[LineInput(receipt.category.upper(), receipt.quantity)],
            purchased_at=now - timedelta(days=receipt.days_ago, hours=3),
        )
        dirty_drain()
        if receipt.voided:
            # A voided sale earned points the void takes back; none were spent.
            receipt_void(receipt=recorded, reason="test")
            dirty_drain()
    for days in plan.email_opens:
        contact_record(
            customer=customer,
            kind="email_open",
            channel="email",
            occurred_at=now - timedelta(days=days, hours=3),
        )
        dirty_drain()
    return customer


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plans=st.lists(customers_st, min_size=1, max_size=6),
    rules=st.lists(rules_st, min_size=1, max_size=4),
)
def test_incremental_whole_base_and_oracle_agree(catalogue, plans, rules):
    store, _products = catalogue
    with transaction.atomic():
        # Only the random segments: the default RFM segments are tested elsewhere.
        Segment.objects.update(is_active=False)
        now = timezone.now()
        today = timezone.localdate(now)
        segments = [
            segment_create(name=f"Random {i}", slug=f"random-{i}", rules=rule)
            for i, rule in enumerate(rules)
        ]
        customers = [record(plan, i, store, now) for i, plan in enumerate(plans)]

        incremental = memberships()
        changed = recompute_all(now=timezone.now())
        whole_base = memberships()
        expected = {
            (segment.pk, customer.pk)
            for segment in segments
            for customer, plan in zip(customers, plans, strict=True)
            if oracle(segment.rules, facts_of(plan, now, today))
        }

        assert whole_base == expected
        assert incremental == expected
        assert changed == 0
        transaction.set_rollback(True)


def test_oracle_sanity_never_bought_counts_as_not_recent():
    plan = PlannedCustomer("Delft", "f", None, [], [], [], None, None)
    f = facts_of(plan, timezone.now(), timezone.localdate())
    rule = {"not": {"field": "last_purchase", "op": "within_days", "value": 30}}

    assert oracle(rule, f) is True
    assert oracle(rule["not"], f) is False
    assert math.isclose(0, f["orders"])
