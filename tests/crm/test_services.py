from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from crm import hooks
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
    Store,
)
from crm.services import (
    LineInput,
    consent_record,
    contact_build,
    contact_record,
    contacts_record_many,
    customer_create,
    customer_stats_rebuild,
    customer_update,
    loyalty_card_issue,
    loyalty_card_link,
    points_earn,
    points_redeem,
    receipt_record,
    receipt_void,
)
from tests.crm.factories import CustomerFactory, LoyaltyCardFactory, card_number

pytestmark = pytest.mark.django_db


def error_codes(exc: ValidationError) -> dict[str, list[str]]:
    return {
        field: [error.code for error in errors]
        for field, errors in exc.error_dict.items()
    }


def table_counts() -> tuple[int, ...]:
    return (
        Receipt.objects.count(),
        ReceiptLine.objects.count(),
        LoyaltyTransaction.objects.count(),
        Contact.objects.count(),
    )


# Customers


def test_customer_create_stores_lowercase_email_and_empty_stats():
    customer = customer_create(email=" Joe@Example.COM ", first_name="Joe")

    assert customer.email == "joe@example.com"
    assert CustomerStats.objects.get(customer=customer).orders == 0


def test_customer_create_refuses_an_email_that_differs_only_in_case(customer):
    with pytest.raises(ValidationError) as exc:
        customer_create(email="JOE@example.com")

    assert error_codes(exc.value) == {"email": ["email_taken"]}
    assert Customer.objects.count() == 1


def test_customer_create_refuses_a_malformed_email_and_writes_nothing():
    with pytest.raises(ValidationError) as exc:
        customer_create(email="joe(at)example", first_name="Joe")

    assert "email" in exc.value.error_dict
    assert not Customer.objects.exists()
    assert not CustomerStats.objects.exists()


def test_customer_create_accepts_a_phone_only_customer_in_e164():
    customer = customer_create(phone="06 12345678", first_name="Sam")

    customer.refresh_from_db()
    assert customer.email is None
    assert str(customer.phone) == "+31612345678"


def test_customer_create_refuses_an_impossible_phone_number():
    with pytest.raises(ValidationError) as exc:
        customer_create(phone="12", first_name="Sam")

    assert "phone" in exc.value.error_dict


def test_customer_update_replaces_tags_and_keeps_other_fields(customer):
    customer_update(customer=customer, city="Delft", tags=["b2b", "Outdoor"])

    customer.refresh_from_db()
    assert customer.city == "Delft"
    assert customer.first_name == "Joe"
    assert sorted(customer.tags.values_list("slug", flat=True)) == ["b2b", "outdoor"]


def test_customer_service_effort_outside_1_to_10_is_refused(customer):
    with pytest.raises(ValidationError) as exc:
        customer_update(customer=customer, service_effort=11)

    assert "service_effort" in exc.value.error_dict


# Consent ledger


def test_latest_consent_entry_is_the_current_consent(customer):
    consent_record(
        customer=customer,
        channel="email",
        granted=True,
        source="store",
        wording="Yes, email me offers.",
    )
    consent_record(
        customer=customer,
        channel="email",
        granted=False,
        source="email_link",
        wording="Unsubscribe link",
    )
    consent_record(
        customer=customer,
        channel="sms",
        granted=True,
        source="store",
        wording="Yes, text me offers.",
    )

    annotated = Customer.objects.with_consent("email").with_consent("sms").get()
    assert annotated.email_consent == Consent.Status.WITHDRAWN
    assert annotated.sms_consent == Consent.Status.GRANTED
    assert Consent.objects.count() == 3
    assert not Customer.objects.consented("email").exists()
    current = Consent.objects.latest_per_channel().order_by("channel")
    assert [(c.channel, c.status) for c in current] == [
        ("email", "withdrawn"),
        ("sms", "granted"),
    ]


def test_consent_without_wording_is_refused(customer):
    with pytest.raises(ValidationError) as exc:
        consent_record(
            customer=customer,
            channel="email",
            granted=True,
            source="store",
            wording="  ",
        )

    assert error_codes(exc.value) == {"wording": ["wording_required"]}
    assert not Consent.objects.exists()


# Loyalty cards


def test_issued_card_numbers_carry_a_valid_check_digit(store):
    from stdnum import luhn

    card = loyalty_card_issue(store=store)

    assert luhn.is_valid(card.number)
    assert card.points == 0


def test_card_with_a_wrong_check_digit_is_refused(store):
    good = card_number(1234)
    bad = good[:-1] + str((int(good[-1]) + 1) % 10)

    with pytest.raises(ValidationError) as exc:
        loyalty_card_issue(number=bad, store=store)

    assert error_codes(exc.value) == {"number": ["invalid_check_digit"]}
    assert not LoyaltyCard.objects.exists()


def test_card_registered_to_someone_else_cannot_be_linked(card):
    other = CustomerFactory()

    with pytest.raises(ValidationError) as exc:
        loyalty_card_link(card=card, customer=other)

    assert error_codes(exc.value) == {"loyalty_card": ["card_taken"]}


def test_redeeming_more_than_the_balance_is_refused_with_the_balance(card):
    points_earn(card=card, points=120)

    with pytest.raises(ValidationError) as exc:
        points_redeem(card=card, points=121)

    assert error_codes(exc.value) == {"points_redeemed": ["insufficient_points"]}
    assert "120" in exc.value.messages[0]
    card.refresh_from_db()
    assert card.points == 120


# Receipts


def test_receipt_record_writes_lines_points_contact_and_stats(
    store, products, customer, card
):
    receipt = receipt_record(
        store=store,
        customer=customer,
        loyalty_card=card,
        payment_method="card",
        lines=[
            LineInput("SHOE-1", 2, discount=Decimal("9.90")),
            LineInput("BAG-1", 1),
        ],
    )

    assert receipt.total == Decimal("134.50")  # 2 x 59.95 - 9.90 + 24.50
    assert receipt.number == "AMS-0000001"
    assert receipt.points_earned == 134
    card.refresh_from_db()
    assert card.points == 134
    assert card.transactions.get().receipt == receipt
    contact = Contact.objects.get()
    assert (contact.kind, contact.receipt, contact.customer) == (
        "purchase",
        receipt,
        customer,
    )
    stats = CustomerStats.objects.get(customer=customer)
    assert stats.orders == 1
    assert stats.total_spent == Decimal("134.50")
    assert stats.last_purchase_at == receipt.purchased_at
    assert stats.favourite_category.slug == "shoes"
    assert stats.preferred_purchase_channel == "store"
    assert Product.objects.get(sku="SHOE-1").stock_level == 98


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([LineInput("NOPE", 1)], {"lines[0].sku": ["unknown_sku"]}),
        ([LineInput("SHOE-1", -1)], {"lines[0].quantity": ["invalid_quantity"]}),
        ([LineInput("SHOE-1", 0)], {"lines[0].quantity": ["invalid_quantity"]}),
        (
            [LineInput("SHOE-1", 1), LineInput("BAG-1", 1, discount=Decimal("30"))],
            {"lines[1].discount": ["invalid_discount"]},
        ),
        (
            [LineInput("SHOE-1", 1, unit_price=Decimal("-1"))],
            {"lines[0].unit_price": ["negative_price"]},
        ),
        ([], {"lines": ["empty"]}),
    ],
)
def test_invalid_lines_are_refused_and_nothing_is_written(
    store, products, customer, card, lines, expected
):
    before = table_counts()

    with pytest.raises(ValidationError) as exc:
        receipt_record(
            store=store,
            customer=customer,
            loyalty_card=card,
            payment_method="card",
            lines=lines,
        )

    assert error_codes(exc.value) == expected
    assert table_counts() == before


def test_total_that_does_not_match_the_lines_is_refused(store, products):
    with pytest.raises(ValidationError) as exc:
        receipt_record(
            store=store,
            payment_method="cash",
            lines=[LineInput("SHOE-1", 1)],
            expected_total=Decimal("60.00"),
        )

    assert error_codes(exc.value) == {"total": ["total_mismatch"]}
    assert "59.95" in exc.value.messages[0]
    assert not Receipt.objects.exists()


def test_anonymous_sale_is_recorded_without_contact(store, products):
    receipt = receipt_record(
        store=store, payment_method="cash", lines=[LineInput("BAG-1", 1)]
    )

    assert receipt.customer is None
    assert receipt.points_earned == 0
    assert not Contact.objects.exists()


def test_receipt_posted_twice_with_one_idempotency_key_is_recorded_once(
    store, products, customer
):
    first = receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
        idempotency_key="till-7-000123",
    )
    second = receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
        idempotency_key="till-7-000123",
    )

    assert second.pk == first.pk
    assert Receipt.objects.count() == 1
    assert CustomerStats.objects.get(customer=customer).orders == 1


def test_an_anonymous_card_taken_meanwhile_is_not_linked_twice(store, products):
    from crm.models import LoyaltyCard

    card = LoyaltyCardFactory(customer=None)
    first, second = CustomerFactory(), CustomerFactory()
    # The card as a till read it before another till's sale linked it to `first`.
    stale = LoyaltyCard.objects.get(pk=card.pk)
    LoyaltyCard.objects.filter(pk=card.pk).update(customer=first)

    with pytest.raises(ValidationError) as exc:
        receipt_record(
            store=store,
            customer=second,
            loyalty_card=stale,
            payment_method="card",
            lines=[LineInput("SHOE-1", 1)],
        )

    assert error_codes(exc.value) == {"loyalty_card": ["card_taken"]}
    assert LoyaltyCard.objects.get(pk=card.pk).customer == first
    assert not Receipt.objects.filter(customer=second).exists()


def test_card_of_another_customer_is_refused(store, products, card):
    stranger = CustomerFactory()

    with pytest.raises(ValidationError) as exc:
        receipt_record(
            store=store,
            customer=stranger,
            loyalty_card=card,
            payment_method="card",
            lines=[LineInput("SHOE-1", 1)],
        )

    assert error_codes(exc.value) == {"loyalty_card": ["card_mismatch"]}


def test_blocked_card_cannot_be_used(store, products, card):
    LoyaltyCard.objects.filter(pk=card.pk).update(status="blocked")
    card.refresh_from_db()

    with pytest.raises(ValidationError) as exc:
        receipt_record(
            store=store,
            loyalty_card=card,
            payment_method="card",
            lines=[LineInput("SHOE-1", 1)],
        )

    assert error_codes(exc.value) == {"loyalty_card": ["card_not_active"]}


def test_redemption_above_the_balance_is_refused_and_nothing_is_written(
    store, products, card
):
    points_earn(card=card, points=50)
    before = table_counts()

    with pytest.raises(ValidationError) as exc:
        receipt_record(
            store=store,
            loyalty_card=card,
            payment_method="card",
            lines=[LineInput("SHOE-1", 1)],
            points_to_redeem=51,
        )

    assert error_codes(exc.value) == {"points_redeemed": ["insufficient_points"]}
    assert table_counts() == before
    card.refresh_from_db()
    assert card.points == 50


def test_redeemed_points_pay_part_of_the_sale_and_earn_on_the_rest(
    store, products, card
):
    points_earn(card=card, points=1000)

    receipt = receipt_record(
        store=store,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
        points_to_redeem=1000,
    )

    assert receipt.redeemed_value == Decimal("10.00")
    assert receipt.amount_paid == Decimal("49.95")
    assert receipt.points_earned == 49
    card.refresh_from_db()
    assert card.points == 49
    assert card.points == sum(card.transactions.values_list("points", flat=True))


def test_purchase_in_the_future_is_refused(store, products):
    with pytest.raises(ValidationError) as exc:
        receipt_record(
            store=store,
            payment_method="cash",
            lines=[LineInput("SHOE-1", 1)],
            purchased_at=timezone.now() + timedelta(days=1),
        )

    assert error_codes(exc.value) == {"purchased_at": ["future"]}


# Three ways to number: on PostgreSQL the receipt is inserted with its number, or
# (with an idempotency key, as at the desk) numbered in one UPDATE; SQLite numbers
# in two statements.
@pytest.mark.parametrize("keyed", [False, True], ids=["store-numbered", "keyed"])
def test_receipt_numbers_count_up_per_store_past_seven_digits(store, products, keyed):
    Store.objects.filter(pk=store.pk).update(receipt_sequence=9_999_998)

    numbers = [
        receipt_record(
            store=store,
            payment_method="cash",
            lines=[LineInput("BAG-1", 1)],
            idempotency_key=f"till-1-{sale}" if keyed else None,
        ).number
        for sale in range(2)
    ]

    assert numbers == ["AMS-9999999", "AMS-10000000"]
    assert (
        list(Receipt.objects.order_by("pk").values_list("number", flat=True)) == numbers
    )


def test_a_given_number_in_the_stores_format_moves_its_sequence_on(store, products):
    given = receipt_record(
        store=store,
        payment_method="cash",
        lines=[LineInput("BAG-1", 1)],
        number="AMS-0000001",
    )

    # Without moving the sequence on, the store would hand out AMS-0000001 again
    # and every numbered sale after it would fail.
    numbered = receipt_record(
        store=store, payment_method="cash", lines=[LineInput("BAG-1", 1)]
    )

    assert (given.number, numbered.number) == ("AMS-0000001", "AMS-0000002")
    other_format = receipt_record(
        store=store,
        payment_method="cash",
        lines=[LineInput("BAG-1", 1)],
        number="TILL3-000777",
    )
    assert other_format.number == "TILL3-000777"
    assert Store.objects.get(pk=store.pk).receipt_sequence == 2


@pytest.mark.parametrize("keyed", [False, True], ids=["store-numbered", "keyed"])
def test_a_recorded_receipt_is_the_row_stored_and_everything_points_at_it(
    store, products, customer, card, keyed
):
    receipt = receipt_record(
        store=store,
        customer=customer,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1), LineInput("BAG-1", 2)],
        send_email=True,
        idempotency_key="desk-7" if keyed else None,
    )

    stored = Receipt.objects.get(pk=receipt.pk)
    assert model_to_dict(receipt) == model_to_dict(stored)
    assert receipt.number == "AMS-0000001"
    assert stored.email_status == Receipt.EmailStatus.PENDING
    assert sorted(receipt.lines.values_list("product__sku", "quantity")) == [
        ("BAG-1", 2),
        ("SHOE-1", 1),
    ]
    assert [line.pk for line in receipt.recorded_lines] == list(
        receipt.lines.values_list("pk", flat=True)
    )
    assert receipt.contacts.get().customer == customer
    assert receipt.loyalty_transactions.get().points == receipt.points_earned > 0
    # The instance is a saved one: saving it again updates the row.
    receipt.void_reason = "kept"
    receipt.save(update_fields=["void_reason"])
    assert Receipt.objects.get(pk=receipt.pk).void_reason == "kept"


def test_void_reverses_points_stats_and_stock_exactly(store, products, customer, card):
    points_earn(card=card, points=500)
    keep = receipt_record(
        store=store,
        customer=customer,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("BAG-1", 2)],
    )
    voided = receipt_record(
        store=store,
        customer=customer,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("SHOE-2", 1)],
        points_to_redeem=300,
    )
    card.refresh_from_db()
    assert card.points == 500 + 49 - 300 + 86

    receipt_void(receipt=voided, reason="Customer changed their mind")

    card.refresh_from_db()
    assert card.points == 500 + 49
    assert card.points == sum(card.transactions.values_list("points", flat=True))
    voided.refresh_from_db()
    assert voided.status == "voided"
    assert voided.void_reason == "Customer changed their mind"
    stats = CustomerStats.objects.get(customer=customer)
    assert stats.orders == 1
    assert stats.total_spent == keep.total
    assert stats.favourite_category.slug == "bags"
    assert Product.objects.get(sku="SHOE-2").stock_level == 100
    assert Contact.objects.filter(kind="purchase_voided").count() == 1


def test_voiding_twice_changes_nothing_the_second_time(store, products, card):
    receipt = receipt_record(
        store=store,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
    )
    receipt_void(receipt=receipt, reason="Wrong item")
    after_first = table_counts()

    receipt_void(receipt=receipt, reason="Wrong item")

    assert table_counts() == after_first
    card.refresh_from_db()
    assert card.points == 0


def test_void_is_refused_when_the_earned_points_were_already_spent(
    store, products, card
):
    receipt = receipt_record(
        store=store,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("SHOE-2", 1)],
    )
    points_redeem(card=card, points=80)

    with pytest.raises(ValidationError) as exc:
        receipt_void(receipt=receipt, reason="Return")

    assert error_codes(exc.value) == {"receipt": ["points_spent"]}
    receipt.refresh_from_db()
    assert receipt.status == "completed"


def test_void_without_a_reason_is_refused(store, products):
    receipt = receipt_record(
        store=store, payment_method="cash", lines=[LineInput("SHOE-1", 1)]
    )

    with pytest.raises(ValidationError):
        receipt_void(receipt=receipt, reason="")


# Contacts and statistics


def test_contact_moves_last_contact_forward_only(customer):
    now = timezone.now()
    contact_record(
        customer=customer, kind="web_visit", channel="online", occurred_at=now
    )
    contact_record(
        customer=customer,
        kind="email_open",
        channel="email",
        occurred_at=now - timedelta(days=3),
    )

    assert CustomerStats.objects.get(customer=customer).last_contact_at == now


def test_contacts_recorded_together_move_each_last_contact_to_its_newest(
    customer, django_assert_max_num_queries
):
    from segments.models import DirtyCustomer

    other = CustomerFactory()
    now = timezone.now()
    contact_record(customer=other, kind="web_visit", channel="online", occurred_at=now)
    batch = [
        contact_build(
            customer=customer,
            kind="web_visit",
            channel="online",
            occurred_at=now - timedelta(days=days),
        )
        for days in (5, 1, 3)
    ] + [
        contact_build(
            customer=other,
            kind="email_open",
            channel="email",
            occurred_at=now - timedelta(days=2),
        )
    ]

    with django_assert_max_num_queries(6):
        saved = contacts_record_many(contacts=batch)

    assert all(contact.pk for contact in saved)
    stats = dict(CustomerStats.objects.values_list("customer_id", "last_contact_at"))
    assert stats[customer.pk] == now - timedelta(days=1)
    assert stats[other.pk] == now  # an older contact never moves it back
    assert set(DirtyCustomer.objects.values_list("customer_id", flat=True)) == {
        customer.pk,
        other.pk,
    }


def test_contact_of_an_unknown_kind_is_refused(customer):
    with pytest.raises(ValidationError) as exc:
        contact_record(customer=customer, kind="telepathy", channel="email")

    assert "kind" in exc.value.error_dict
    assert not Contact.objects.exists()


def test_contact_consumers_are_called_inside_the_recording_transaction(
    settings, store, products, customer
):
    consumer_calls.clear()
    hooks.contacts_recorded.register(record_consumer)
    try:
        receipt_record(
            store=store,
            customer=customer,
            payment_method="card",
            lines=[LineInput("SHOE-1", 1)],
        )
    finally:
        hooks.contacts_recorded.unregister(record_consumer)

    purchase = Contact.objects.get(kind="purchase")
    assert consumer_calls == [[(customer.pk, purchase.pk)]]


consumer_calls: list = []


def record_consumer(*, contacts):
    consumer_calls.append([tuple(ref) for ref in contacts])


def test_full_rebuild_gives_the_figures_the_receipt_services_kept(store, products):
    customers = CustomerFactory.create_batch(4)
    for index, customer in enumerate(customers):
        for sku in ["SHOE-1", "BAG-1", "BAG-1"][: index + 1]:
            receipt_record(
                store=store,
                customer=customer,
                payment_method="card",
                lines=[LineInput(sku, index + 1)],
                channel="online",
            )
    receipt_void(receipt=Receipt.objects.first(), reason="test")
    kept = {
        s.customer_id: (
            s.orders,
            s.total_spent,
            s.last_purchase_at,
            s.favourite_category_id,
            s.preferred_purchase_channel,
        )
        for s in CustomerStats.objects.all()
    }
    CustomerStats.objects.update(orders=0, total_spent=0, favourite_category=None)

    assert customer_stats_rebuild(chunk_size=2) == 4

    rebuilt = {
        s.customer_id: (
            s.orders,
            s.total_spent,
            s.last_purchase_at,
            s.favourite_category_id,
            s.preferred_purchase_channel,
        )
        for s in CustomerStats.objects.all()
    }
    assert rebuilt == kept


def test_points_ledger_sum_always_equals_the_card_balance(card):
    for points in (10, 25, 5):
        points_earn(card=card, points=points)
    points_redeem(card=card, points=30)

    card.refresh_from_db()
    assert card.points == 10
    assert LoyaltyTransaction.objects.filter(card=card).count() == 4


def test_database_refuses_a_negative_balance_even_without_services(card):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        LoyaltyCard.objects.filter(pk=card.pk).update(points=-1)


def test_factory_card_is_linked_to_its_customer():
    card = LoyaltyCardFactory()

    assert card.customer.loyalty_cards.get() == card


def test_rebuild_stats_command_recomputes_every_customer(store, products):
    from io import StringIO

    from django.core.management import call_command

    customer = CustomerFactory()
    receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("SHOE-1", 3)],
    )
    CustomerStats.objects.update(orders=0, total_spent=0)
    out = StringIO()

    call_command("rebuild_stats", verbosity=0, stdout=out)

    stats = CustomerStats.objects.get(customer=customer)
    assert (stats.orders, stats.total_spent) == (1, Decimal("179.85"))
    assert "Rebuilt statistics of 1 customers." in out.getvalue()


def test_every_sale_and_new_customer_reaches_webhook_subscribers(store, products):
    # Not only API calls: desk sales and customers registered anywhere count too.
    from crm.webhooks.models import WebhookDelivery
    from crm.webhooks.services import webhook_subscription_create

    webhook_subscription_create(
        name="Web shop",
        url="https://shop.example.com/hooks",
        events=["receipt.created", "customer.created"],
    )

    customer = customer_create(email="new@example.com", first_name="Nia")
    receipt = receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
    )

    events = dict(WebhookDelivery.objects.values_list("event", "body"))
    assert set(events) == {"customer.created", "receipt.created"}
    assert receipt.number in events["receipt.created"]
    assert "new@example.com" in events["customer.created"]
