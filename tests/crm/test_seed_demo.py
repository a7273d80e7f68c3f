"""`manage.py seed_demo`: believable, consistent and repeatable demo data."""

import hashlib
import io
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count, F, Sum
from django.utils import timezone
from stdnum import luhn

from crm.demo import ShopperType, customer_index, demo_seed, shopper_types
from crm.demo.catalogue import ZONE
from crm.models import (
    Consent,
    Contact,
    Customer,
    CustomerStats,
    LoyaltyCard,
    LoyaltyTransaction,
    Product,
    Receipt,
    ReceiptLine,
    StaffMember,
    Store,
)
from crm.roles import CLERKS, MARKETERS
from crm.services import LineInput, customer_stats_rebuild, receipt_record
from tests.crm.factories import CustomerFactory

pytestmark = pytest.mark.django_db

CUSTOMERS = 300
SEED = 7
STORE_CODES = {"ams", "rtm", "utr", "dhg", "ehv", "grq"}


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed_demo(**options) -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out, stderr=io.StringIO(), **options)
    return out.getvalue()


@pytest.fixture
def seeded(db) -> str:
    return seed_demo(customers=CUSTOMERS, seed=SEED)


def fingerprint() -> str:
    """A digest of the demo data by natural keys, blind to ids and insert order."""
    tables = [
        Product.objects.values_list("sku", "name", "price", "category__slug"),
        Customer.objects.values_list(
            "email", "phone", "first_name", "last_name", "birth_date", "gender",
            "address", "postal_code", "city", "region", "income_band", "occupation",
            "family_situation", "preferred_channel", "language", "social_followers",
            "service_effort", "home_store__code", "source", "created_at",
        ),
        Customer.tags.through.objects.values_list("customer__email", "tag__slug"),
        Consent.objects.values_list(
            "customer__email", "channel", "status", "recorded_at", "source", "wording"
        ),
        LoyaltyCard.objects.values_list(
            "number", "customer__email", "tier", "points", "issued_at"
        ),
        Receipt.objects.values_list(
            "store__code", "number", "customer__email", "loyalty_card__number",
            "clerk__username", "channel", "purchased_at", "total", "payment_method",
            "points_earned",
        ),
        ReceiptLine.objects.values_list(
            "receipt__store__code", "receipt__number", "product__sku", "quantity",
            "unit_price", "discount", "line_total",
        ),
        Contact.objects.values_list(
            "customer__email", "kind", "channel", "occurred_at", "store__code",
            "receipt__number", "payload",
        ),
        LoyaltyTransaction.objects.values_list(
            "card__number", "kind", "points", "receipt__number", "created_at"
        ),
        CustomerStats.objects.values_list(
            "customer__email", "orders", "total_spent", "last_purchase_at"
        ),
    ]  # fmt: skip
    digest = hashlib.sha256()
    for rows in tables:
        for row in sorted(map(repr, rows)):
            digest.update(row.encode())
    return digest.hexdigest()


class Discarded(Exception):
    pass


def fingerprint_of_fresh_seed(*, seed: int, until: datetime) -> str:
    """Seed an empty database, fingerprint it, and roll it all back."""
    try:
        with transaction.atomic():
            demo_seed(customers=120, seed=seed, until=until)
            result = fingerprint()
            raise Discarded
    except Discarded:
        return result


def test_same_seed_gives_the_same_data_and_another_seed_other_data(db):
    until = datetime(2025, 3, 30, 12, tzinfo=ZONE)

    first = fingerprint_of_fresh_seed(seed=1, until=until)
    again = fingerprint_of_fresh_seed(seed=1, until=until)
    other = fingerprint_of_fresh_seed(seed=2, until=until)

    assert Customer.objects.count() == 0
    assert first == again
    assert other != first


def test_small_seed_adds_up_on_any_database(db):
    seed_demo(customers=40, seed=3)

    assert Customer.objects.count() == 40
    lines_total = Counter()
    for receipt_id, line_total in ReceiptLine.objects.values_list(
        "receipt_id", "line_total"
    ):
        lines_total[receipt_id] += line_total
    assert lines_total
    assert dict(Receipt.objects.values_list("id", "total")) == lines_total
    for card in LoyaltyCard.objects.annotate(ledger=Sum("transactions__points")):
        assert card.points == (card.ledger or 0)
    orders = dict(
        Receipt.objects.values("customer")
        .annotate(n=Count("id"))
        .values_list("customer", "n")
    )
    for stats in CustomerStats.objects.all():
        assert stats.orders == orders.get(stats.customer_id, 0)


def test_every_receipt_total_is_the_sum_of_its_lines(seeded):
    # Summed in Python: SQLite would add the decimals up as floats.
    lines_total = Counter()
    for line in ReceiptLine.objects.all():
        assert line.line_total == line.quantity * line.unit_price - line.discount
        assert Decimal(0) <= line.discount <= line.quantity * line.unit_price
        lines_total[line.receipt_id] += line.line_total
    totals = dict(Receipt.objects.values_list("id", "total"))
    assert len(totals) > CUSTOMERS * 5
    assert totals == lines_total


def test_card_points_equal_the_earned_ledger_one_entry_per_receipt(seeded):
    cards = LoyaltyCard.objects.annotate(ledger=Sum("transactions__points"))
    assert 0.7 < cards.count() / CUSTOMERS < 0.9
    for card in cards:
        luhn.validate(card.number)
        assert card.points == (card.ledger or 0) >= 0
    with_card = Receipt.objects.filter(loyalty_card__isnull=False)
    assert with_card.count() == LoyaltyTransaction.objects.count()
    assert not LoyaltyTransaction.objects.exclude(kind="earned").exists()
    assert not with_card.exclude(
        loyalty_transactions__points=F("points_earned")
    ).exists()
    assert not with_card.exclude(loyalty_card__customer=F("customer")).exists()


def test_statistics_are_what_a_rebuild_computes(seeded):
    fields = ("customer_id", "orders", "total_spent", "last_purchase_at")
    seeded_stats = set(CustomerStats.objects.values_list(*fields))

    customer_stats_rebuild()

    assert set(CustomerStats.objects.values_list(*fields)) == seeded_stats
    assert len(seeded_stats) == CUSTOMERS
    orders, spent = Counter(), Counter()
    for customer_id, total in Receipt.objects.values_list("customer_id", "total"):
        orders[customer_id] += 1
        spent[customer_id] += total
    for customer_id, stats_orders, stats_spent, _last in seeded_stats:
        assert stats_orders == orders[customer_id]
        assert stats_spent == spent[customer_id]


def test_nothing_happens_in_the_future(seeded):
    now = timezone.now()
    latest = [
        Receipt.objects.latest("purchased_at").purchased_at,
        Contact.objects.latest("occurred_at").occurred_at,
        Consent.objects.latest("recorded_at").recorded_at,
        Customer.objects.latest("created_at").created_at,
        LoyaltyCard.objects.latest("issued_at").issued_at,
    ]
    assert all(moment < now for moment in latest)
    earliest = Receipt.objects.earliest("purchased_at").purchased_at
    assert now - earliest < timedelta(days=731)


def test_customers_look_like_dutch_shoppers_with_unique_indexed_emails(seeded):
    emails = list(Customer.objects.values_list("email", flat=True))
    assert len(set(emails)) == CUSTOMERS
    assert sorted(map(customer_index, emails)) == list(range(CUSTOMERS))
    stores = {store.code: store for store in Store.objects.all()}
    assert set(stores) == STORE_CODES
    assert {store.time_zone for store in stores.values()} == {"Europe/Amsterdam"}
    customers = list(Customer.objects.select_related("home_store"))
    in_home_city = [c for c in customers if c.city == c.home_store.city]
    assert len(in_home_city) > 0.7 * CUSTOMERS
    assert {c.gender for c in customers} <= {"f", "m", "x"}
    assert all(1 <= c.service_effort <= 10 for c in customers)
    assert all(c.birth_date and c.postal_code[:4].isdigit() for c in customers)


def test_each_shopper_type_is_present_and_shops_its_own_way(seeded):
    types = shopper_types(seed=SEED, customers=CUSTOMERS)
    assert set(types) == set(ShopperType)
    kind_of = {
        customer.pk: types[customer_index(customer.email)]
        for customer in Customer.objects.all()
    }
    receipts = Receipt.objects.values_list("customer_id", "channel", "total")
    orders, spent, online = Counter(), Counter(), Counter()
    for customer_id, channel, total in receipts:
        kind = kind_of[customer_id]
        orders[kind] += 1
        spent[kind] += total
        online[kind] += channel == "online"

    def basket(kind):
        return spent[kind] / orders[kind]

    assert basket(ShopperType.OCCASION) > 2 * basket(ShopperType.YOUNG_ONLINE)
    assert basket(ShopperType.BUSINESS) > basket(ShopperType.OCCASION)
    assert online[ShopperType.YOUNG_ONLINE] > 0.7 * orders[ShopperType.YOUNG_ONLINE]
    assert online[ShopperType.OCCASION] < 0.3 * orders[ShopperType.OCCASION]
    business = {pk for pk, kind in kind_of.items() if kind == ShopperType.BUSINESS}
    assert (
        set(Customer.objects.filter(tags__slug="b2b").values_list("pk", flat=True))
        == business
    )
    assert set(
        Receipt.objects.filter(customer__in=business).values_list(
            "payment_method", flat=True
        )
    ) == {"invoice"}
    lapsed = [pk for pk, kind in kind_of.items() if kind == ShopperType.LAPSED]
    half_a_year_ago = timezone.now() - timedelta(days=183)
    assert not Contact.objects.filter(
        customer__in=lapsed, occurred_at__gt=half_a_year_ago
    ).exists()
    assert Receipt.objects.filter(customer__in=lapsed).exists()


def test_tills_continue_after_the_seeded_receipt_numbers(seeded):
    store = Store.objects.get(code="ams")
    seeded_count = store.receipts.count()
    assert store.receipt_sequence == seeded_count
    assert store.receipts.filter(number=f"AMS-{seeded_count:07d}").exists()

    receipt = receipt_record(
        store=store,
        lines=[LineInput(sku=Product.objects.first().sku, quantity=1)],
        payment_method="cash",
    )

    assert receipt.number == f"AMS-{seeded_count + 1:07d}"


def test_demo_logins_are_printed_and_have_their_roles(seeded):
    users = get_user_model().objects
    admin = users.get(username="admin")
    assert admin.is_superuser
    assert admin.is_staff
    assert admin.check_password("loyalist-admin")
    marketer = users.get(username="marketer")
    assert marketer.is_staff
    assert not marketer.is_superuser
    assert list(marketer.groups.values_list("name", flat=True)) == [MARKETERS]
    assert marketer.groups.get().permissions.filter(codename="view_customer").exists()
    for code in STORE_CODES:
        clerk = users.get(username=f"clerk-{code}")
        assert clerk.check_password("loyalist-clerk")
        assert not clerk.is_staff
        assert list(clerk.groups.values_list("name", flat=True)) == [CLERKS]
        assert StaffMember.objects.get(user=clerk).store.code == code
    for login in ("admin", "loyalist-admin", "marketer", "clerk-ams", "loyalist-clerk"):
        assert login in seeded


def test_if_empty_leaves_a_database_with_customers_alone_but_ensures_logins(db):
    CustomerFactory()

    output = seed_demo(customers=50, if_empty=True)

    assert Customer.objects.count() == 1
    assert not Receipt.objects.exists()
    assert "loyalist-admin" in output
    assert get_user_model().objects.get(username="marketer").is_staff


def test_if_empty_keeps_passwords_of_existing_demo_accounts(seeded):
    admin = get_user_model().objects.get(username="admin")
    admin.set_password("changed-by-the-owner")
    admin.save()

    output = seed_demo(customers=50, if_empty=True)

    admin.refresh_from_db()
    assert admin.check_password("changed-by-the-owner")
    assert "existed already and kept its own password" in output
    assert Customer.objects.count() == CUSTOMERS


def test_refuses_to_seed_a_database_that_has_customers(db):
    CustomerFactory()

    with pytest.raises(CommandError, match="already has 1 customer"):
        seed_demo(customers=50)

    assert Customer.objects.count() == 1


def test_demo_personas_arrive_through_the_demo_seeded_hook(seeded):
    from personas.demo import DEMO_PERSONAS
    from personas.models import Persona

    names = set(Persona.objects.values_list("name", flat=True))

    assert {spec["name"] for spec in DEMO_PERSONAS} <= names
