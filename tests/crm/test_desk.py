"""The store clerk's desk: access, recording sales, confirmation, void, the list."""

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from io import StringIO
from threading import Barrier

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format

from crm.desk.forms import MARKETING_CONSENT_WORDING
from crm.desk.permissions import SESSION_STORE_KEY
from crm.models import (
    Channel,
    Consent,
    Contact,
    Customer,
    LoyaltyCard,
    LoyaltyTransaction,
    Receipt,
    StaffMember,
)
from crm.roles import MARKETERS
from crm.services import LineInput, points_earn, receipt_record
from tests.crm.desk_support import clerks_group, sale_data
from tests.crm.factories import (
    CustomerFactory,
    LoyaltyCardFactory,
    UserFactory,
    card_number,
)

pytestmark = pytest.mark.django_db

SALE_URL = reverse("desk:sale")


@pytest.fixture(autouse=True)
def empty_cache():
    # Failed sign-ins are counted in the cache, which outlives a test run on Redis.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def desk_clerk(clerk):
    clerk.groups.add(clerks_group())
    return clerk


@pytest.fixture
def desk(client, desk_clerk):
    client.force_login(desk_clerk)
    return client


@pytest.fixture
def other_clerk(other_store):
    user = UserFactory(username="utrecht-clerk")
    user.groups.add(clerks_group())
    StaffMember.objects.create(user=user, store=other_store)
    return user


def record(desk, **kwargs):
    return desk.post(SALE_URL, sale_data(**kwargs))


def field_errors(response, field: str) -> list[str]:
    form = response.context["form"]
    return [str(message) for message in form.errors.get(field, [])]


# Who may use the desk


def test_anonymous_visitor_is_sent_to_the_desk_sign_in(client, store):
    response = client.get(SALE_URL)

    assert response.status_code == 302
    assert response.url.startswith(reverse("desk:login"))
    assert "next=/desk/" in response.url


def test_clerk_signs_in_and_lands_on_the_sale_page(client, desk_clerk):
    response = client.post(
        reverse("desk:login"),
        {"username": "clerk", "password": "correct-horse-battery"},
    )

    assert response.status_code == 302
    assert response.url == SALE_URL
    assert client.get(SALE_URL).status_code == 200


def test_repeated_failed_sign_ins_are_throttled(client, desk_clerk):
    for _attempt in range(5):
        client.post(reverse("desk:login"), {"username": "clerk", "password": "wrong"})

    response = client.post(
        reverse("desk:login"),
        {"username": "clerk", "password": "correct-horse-battery"},
    )

    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_admin_sign_in_is_throttled_too(client, admin_user):
    for _attempt in range(5):
        client.post(reverse("admin:login"), {"username": "admin", "password": "x"})

    response = client.post(
        reverse("admin:login"),
        {"username": "admin", "password": "correct-horse-battery"},
    )

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_marketer_is_refused_the_desk(client, store):
    marketer = UserFactory(username="marketer", is_staff=True)
    marketer.groups.add(Group.objects.get_or_create(name=MARKETERS)[0])
    client.force_login(marketer)

    assert client.get(SALE_URL).status_code == 403
    assert client.get(reverse("desk:receipt_list")).status_code == 403
    assert client.get(reverse("desk:product_search"), {"q": "x"}).status_code == 403


def test_staff_member_outside_the_clerks_group_is_refused(client, clerk):
    client.force_login(clerk)

    assert client.get(SALE_URL).status_code == 403


def test_clerk_without_a_store_is_refused(client, store):
    user = UserFactory(username="storeless")
    user.groups.add(clerks_group())
    client.force_login(user)

    assert client.get(SALE_URL).status_code == 403


def test_superuser_chooses_a_store_before_using_the_desk(
    client, admin_user, store, other_store, products
):
    client.force_login(admin_user)

    response = client.get(SALE_URL)
    assert response.status_code == 302
    assert response.url.startswith(reverse("desk:store_choose"))

    response = client.post(
        reverse("desk:store_choose"), {"store": other_store.pk, "next": SALE_URL}
    )
    assert response.status_code == 302
    assert client.session[SESSION_STORE_KEY] == other_store.pk

    response = record(client, lines=[("SHOE-1", 1)])
    receipt = Receipt.objects.get()
    assert receipt.store == other_store
    assert receipt.clerk == admin_user


def test_clerk_cannot_choose_another_store(desk, other_store):
    response = desk.post(reverse("desk:store_choose"), {"store": other_store.pk})

    assert response.status_code == 403


# The sale page


def test_desk_page_has_a_fresh_token_and_takes_few_queries(
    desk, django_assert_max_num_queries
):
    # Session, user, the clerk's store (one query with the group check).
    with django_assert_max_num_queries(4):
        first = desk.get(SALE_URL)
    second = desk.get(SALE_URL)

    tokens = [
        re.search(r'name="token" value="([0-9a-f]{32})"', r.content.decode()).group(1)
        for r in (first, second)
    ]
    assert tokens[0] != tokens[1]
    page = first.content.decode()
    assert 'for="id_identifier"' in page
    assert "autofocus" in page
    assert "Record sale" in page


def test_lookup_by_card_number_shows_name_tier_points_and_last_visit(
    desk, store, products, customer, card
):
    receipt_record(
        store=store,
        customer=customer,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
    )

    data = desk.get(reverse("desk:customer_lookup"), {"q": card.number}).json()

    assert data["found"] is True
    assert data["customer"]["name"] == customer.full_name
    assert data["card"] == {"number": card.number, "tier": "Basic", "points": 59}
    assert data["last_visit"] == timezone.localdate().isoformat()
    # The panel the page swaps in comes from the page's own template.
    assert "<dt>Last visit</dt>" in data["html"]
    assert f"<dd>{date_format(timezone.localdate(), 'j M Y')}</dd>" in data["html"]
    assert "Balance: 59 points." in data["points_help"]


def test_lookup_of_nobody_renders_the_notice_and_points_help_without_a_balance(desk):
    data = desk.get(reverse("desk:customer_lookup"), {"q": "New@Example.com"}).json()

    assert '<p class="notice">' in data["html"]
    assert "register them below" in data["html"]
    assert "Balance" not in data["points_help"]
    assert "One point is worth EUR 0.01." in data["points_help"]


def test_lookup_by_email_ignores_capitals_and_by_phone_takes_national_format(
    desk, customer, card
):
    Customer.objects.filter(pk=customer.pk).update(phone="+31612345678")

    by_email = desk.get(reverse("desk:customer_lookup"), {"q": "JOE@example.com"})
    by_phone = desk.get(reverse("desk:customer_lookup"), {"q": "06 1234 5678"})

    assert by_email.json()["card"]["number"] == card.number
    assert by_phone.json()["card"]["number"] == card.number


def test_lookup_of_an_unknown_email_offers_to_register_the_customer(desk):
    data = desk.get(reverse("desk:customer_lookup"), {"q": "New@Example.com"}).json()

    assert data["found"] is False
    assert data["unknown_email"] == "new@example.com"
    assert "register them below" in data["message"]


def test_lookup_of_a_mistyped_card_number_says_so(desk):
    number = card_number(7)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)

    data = desk.get(reverse("desk:customer_lookup"), {"q": wrong}).json()

    assert data["found"] is False
    assert "wrong check digit" in data["message"]


def test_product_search_returns_json_with_exact_codes_first(desk, products):
    products["BAG-1"].barcode = "8712345678906"
    products["BAG-1"].save()

    by_barcode = desk.get(reverse("desk:product_search"), {"q": "8712345678906"})
    by_prefix = desk.get(reverse("desk:product_search"), {"q": "shoe"})

    assert by_barcode.json()["results"][0]["sku"] == "BAG-1"
    assert by_barcode.json()["results"][0]["price"] == "24.50"
    assert {p["sku"] for p in by_prefix.json()["results"]} == {"SHOE-1", "SHOE-2"}


def test_refresh_without_javascript_finds_the_customer_and_keeps_the_lines(
    desk, products, customer, card
):
    data = sale_data(
        action="refresh",
        identifier=card.number,
        lines=[("SHOE-1", 2, "5.00")],
        payment_method="cash",
    )

    response = desk.post(SALE_URL, data)

    assert response.status_code == 200
    assert Receipt.objects.count() == 0
    page = response.content.decode()
    assert customer.full_name in page
    assert 'value="SHOE-1"' in page
    assert re.search(r'value="cash"[^>]*checked', page)
    # 2 x 59.95 - 5.00, and an empty line to type the next product into.
    assert response.context["total"] == Decimal("114.90")
    assert len(response.context["formset"].forms) == 2
    assert f'value="{data["token"]}"' in page


# Recording a sale


def test_sale_by_sku_and_barcode_for_a_scanned_card_earns_points(
    desk, desk_clerk, store, products, customer, card
):
    products["BAG-1"].barcode = "8712345678906"
    products["BAG-1"].save()

    response = record(
        desk,
        identifier=card.number,
        lines=[("SHOE-1", 2, "10.00"), ("8712345678906", 1)],
        payment_method="card",
    )

    receipt = Receipt.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("desk:receipt_detail", args=[receipt.pk])
    assert receipt.store == store
    assert receipt.clerk == desk_clerk
    assert receipt.customer == customer
    assert receipt.loyalty_card == card
    assert receipt.total == Decimal("134.40")
    assert [(line.product.sku, line.quantity) for line in receipt.lines.all()] == [
        ("SHOE-1", 2),
        ("BAG-1", 1),
    ]
    assert receipt.points_earned == 134
    card.refresh_from_db()
    assert card.points == 134
    assert Contact.objects.filter(
        customer=customer, kind=Contact.Kind.PURCHASE, receipt=receipt
    ).exists()


def test_recording_a_sale_takes_the_same_queries_however_many_lines(
    desk, products, card, django_assert_max_num_queries
):
    # Products are resolved in one query and lines written in one insert, so a
    # longer receipt costs no extra round trips per line.
    with django_assert_max_num_queries(40) as one_line:
        record(desk, identifier=card.number, lines=[("SHOE-1", 1)])
    with django_assert_max_num_queries(40) as three_lines:
        record(
            desk,
            identifier=card.number,
            lines=[("SHOE-1", 1), ("SHOE-2", 2), ("BAG-1", 1)],
        )

    # Stock moves in one statement too (locking in primary-key order, against
    # deadlocks).
    assert len(three_lines.captured_queries) == len(one_line.captured_queries)


def test_confirmation_shows_number_points_balance_and_email_state(
    desk, products, customer, card
):
    points_earn(card=card, points=40)
    record(desk, identifier=card.number, lines=[("SHOE-2", 1)])
    receipt = Receipt.objects.get()

    page = desk.get(reverse("desk:receipt_detail", args=[receipt.pk]))

    text = page.content.decode()
    assert receipt.number in text
    assert re.search(r"data-points-earned>89<", text)
    assert re.search(r"data-points-balance>129<", text)
    assert "Not requested." in text
    assert reverse("desk:receipt_void", args=[receipt.pk]) in text
    assert reverse("desk:receipt_print", args=[receipt.pk]) in text
    assert reverse("desk:receipt_email", args=[receipt.pk]) in text


def test_print_view_shows_the_receipt_for_the_printer(desk, store, products, card):
    record(desk, identifier=card.number, lines=[("SHOE-1", 2)])
    receipt = Receipt.objects.get()

    page = desk.get(reverse("desk:receipt_print", args=[receipt.pk])).content.decode()

    assert store.name in page
    assert store.address in page
    assert receipt.number in page
    assert "119.90" in page
    assert "data-autoprint" in page


def test_anonymous_sale_is_recorded_without_customer_or_points(desk, products):
    response = record(desk, lines=[("BAG-1", 1)], payment_method="cash")

    receipt = Receipt.objects.get()
    assert response.status_code == 302
    assert receipt.customer is None
    assert receipt.loyalty_card is None
    assert receipt.points_earned == 0
    assert receipt.payment_method == "cash"


def test_resubmitted_form_records_one_sale(desk, products, customer, card):
    data = sale_data(identifier=card.number, lines=[("SHOE-1", 1)])

    first = desk.post(SALE_URL, data)
    second = desk.post(SALE_URL, data)

    assert Receipt.objects.count() == 1
    assert first.url == second.url
    card.refresh_from_db()
    assert card.points == 59
    assert LoyaltyTransaction.objects.count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs concurrent writers"
)
def test_double_click_with_a_registration_records_one_sale_and_one_customer(
    desk_clerk, products
):
    data = sale_data(
        lines=[("SHOE-1", 1)], new_first_name="Zed", new_email="zed@example.com"
    )
    barrier = Barrier(2)

    def submit(_index):
        client = Client()
        client.force_login(desk_clerk)
        barrier.wait()
        try:
            return client.post(SALE_URL, data)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(submit, range(2))

    assert (first.status_code, second.status_code) == (302, 302)
    assert first.url == second.url
    assert Receipt.objects.count() == 1
    assert Customer.objects.filter(email="zed@example.com").count() == 1


def test_resubmitted_registration_creates_one_customer(desk, products):
    data = sale_data(
        lines=[("SHOE-1", 1)], new_first_name="Ann", new_email="ann@example.com"
    )

    desk.post(SALE_URL, data)
    second = desk.post(SALE_URL, data)

    assert second.status_code == 302
    assert Customer.objects.filter(email="ann@example.com").count() == 1
    assert Receipt.objects.count() == 1


def test_unknown_product_is_shown_next_to_its_line_and_everything_is_kept(
    desk, products, card
):
    data = sale_data(
        identifier=card.number,
        lines=[("SHOE-1", 3), ("NOPE-9", 1)],
        new_first_name="",
        points_to_redeem="",
    )

    response = desk.post(SALE_URL, data)

    assert response.status_code == 200
    assert Receipt.objects.count() == 0
    formset = response.context["formset"]
    assert formset.forms[1].errors["code"] == ["No product with SKU or barcode NOPE-9."]
    assert formset.forms[0].errors == {}
    page = response.content.decode()
    assert 'value="NOPE-9"' in page
    assert 'value="3"' in page
    assert f'value="{card.number}"' in page
    assert f'value="{data["token"]}"' in page
    assert 'id="id_lines-1-code_error"' in page
    assert 'aria-invalid="true"' in page


def test_a_sale_needs_a_line(desk, store):
    response = record(desk, lines=[])

    assert response.status_code == 200
    assert "Add at least one line" in str(response.context["formset"].non_form_errors())


def test_discount_above_the_line_amount_is_shown_next_to_the_discount(desk, products):
    response = record(desk, lines=[("BAG-1", 1, "30.00")])

    formset = response.context["formset"]
    assert "Discount must be between 0" in formset.forms[0].errors["discount"][0]
    assert Receipt.objects.count() == 0


def test_redemption_above_the_balance_is_refused_with_a_clear_message(
    desk, products, card
):
    points_earn(card=card, points=120)

    response = record(
        desk, identifier=card.number, lines=[("SHOE-1", 1)], points_to_redeem="500"
    )

    assert response.status_code == 200
    assert field_errors(response, "points_to_redeem") == [
        f"Card {card.number} has 120 points; 500 cannot be redeemed."
    ]
    assert Receipt.objects.count() == 0
    card.refresh_from_db()
    assert card.points == 120


def test_redemption_within_the_balance_pays_part_of_the_sale(desk, products, card):
    points_earn(card=card, points=1000)

    record(desk, identifier=card.number, lines=[("SHOE-1", 1)], points_to_redeem="500")

    receipt = Receipt.objects.get()
    assert receipt.points_redeemed == 500
    assert receipt.redeemed_value == Decimal("5.00")
    # Points are earned on what was paid in money: 54.95.
    assert receipt.points_earned == 54
    card.refresh_from_db()
    assert card.points == 1000 - 500 + 54


def test_redeeming_without_a_card_is_refused(desk, products):
    response = record(desk, lines=[("SHOE-1", 1)], points_to_redeem="10")

    assert field_errors(response, "points_to_redeem") == [
        "Scan the customer's loyalty card to redeem points."
    ]


# Registering a customer at the till


def test_quick_create_registers_customer_with_card_and_marketing_consent(
    desk, desk_clerk, store, products
):
    response = record(
        desk,
        lines=[("SHOE-1", 1)],
        new_first_name="Ann",
        new_email="Ann@Example.com",
        new_phone="0612345678",
        marketing_opt_in="on",
    )

    assert response.status_code == 302
    customer = Customer.objects.get(email="ann@example.com")
    assert customer.first_name == "Ann"
    assert str(customer.phone) == "+31612345678"
    assert customer.home_store == store
    consent = Consent.objects.get(customer=customer)
    assert consent.channel == Channel.EMAIL
    assert consent.status == Consent.Status.GRANTED
    assert consent.source == Consent.Source.STORE
    assert consent.wording == str(MARKETING_CONSENT_WORDING)
    assert consent.recorded_by == desk_clerk
    receipt = Receipt.objects.get()
    assert receipt.customer == customer
    assert receipt.loyalty_card.customer == customer
    assert receipt.points_earned == 59


def test_receipt_email_alone_is_not_marketing_consent(desk, products):
    record(
        desk,
        lines=[("SHOE-1", 1)],
        new_email="bob@example.com",
        email_receipt=True,
    )

    customer = Customer.objects.get(email="bob@example.com")
    assert not Consent.objects.filter(customer=customer).exists()
    assert not Customer.objects.consented(Channel.EMAIL).filter(pk=customer.pk).exists()
    assert Receipt.objects.get().email_status == Receipt.EmailStatus.PENDING


def test_unknown_email_typed_above_is_registered_when_a_name_is_given(desk, products):
    record(
        desk,
        identifier="carol@example.com",
        lines=[("BAG-1", 1)],
        new_first_name="Carol",
    )

    assert Customer.objects.get(email="carol@example.com").first_name == "Carol"


def test_unknown_email_alone_asks_to_register_and_prefills_the_email(desk, products):
    response = record(desk, identifier="dan@example.com", lines=[("BAG-1", 1)])

    assert field_errors(response, "identifier") == [
        "No customer with email dan@example.com yet; register them below."
    ]
    assert Receipt.objects.count() == 0


def test_registering_an_existing_email_is_refused_next_to_the_email(
    desk, products, customer
):
    response = record(
        desk, lines=[("SHOE-1", 1)], new_first_name="Jo", new_email="JOE@example.com"
    )

    assert response.status_code == 200
    assert field_errors(response, "new_email") == [
        "A customer with email joe@example.com already exists."
    ]
    assert Customer.objects.count() == 1
    assert Receipt.objects.count() == 0


def test_registration_needs_an_email_or_a_phone(desk, products):
    response = record(desk, lines=[("SHOE-1", 1)], new_first_name="Eve")

    assert field_errors(response, "new_email") == [
        "Give an email address or a phone number for the customer."
    ]


def test_marketing_opt_in_needs_an_email_address(desk, products):
    response = record(
        desk, lines=[("SHOE-1", 1)], new_phone="0612345678", marketing_opt_in="on"
    )

    assert field_errors(response, "marketing_opt_in") == [
        "Marketing by email needs an email address."
    ]
    assert Customer.objects.count() == 0


def test_scanning_a_new_card_and_registering_issues_that_card(desk, store, products):
    number = card_number(4242)

    record(desk, identifier=number, lines=[("SHOE-1", 1)], new_email="fay@example.com")

    card = LoyaltyCard.objects.get(number=number)
    assert card.customer.email == "fay@example.com"
    assert card.issuing_store == store
    assert Receipt.objects.get().loyalty_card == card


def test_registering_with_an_anonymous_card_links_that_card(desk, products):
    card = LoyaltyCardFactory(customer=None)

    record(
        desk, identifier=card.number, lines=[("SHOE-1", 1)], new_email="gus@example.com"
    )

    card.refresh_from_db()
    assert card.customer.email == "gus@example.com"
    assert LoyaltyCard.objects.count() == 1


# Store boundaries, void, list


def test_other_stores_receipt_is_not_found_for_a_clerk(
    desk, other_store, products, customer
):
    receipt = receipt_record(
        store=other_store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
    )

    for name in ("receipt_detail", "receipt_print", "receipt_void"):
        assert desk.get(reverse(f"desk:{name}", args=[receipt.pk])).status_code == 404
    void = desk.post(reverse("desk:receipt_void", args=[receipt.pk]), {"reason": "x"})
    resend = desk.post(reverse("desk:receipt_email", args=[receipt.pk]))
    assert void.status_code == 404
    assert resend.status_code == 404
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.COMPLETED


def test_void_reverses_points_exactly_and_is_logged_without_personal_data(
    desk, desk_clerk, products, customer, card, caplog
):
    points_earn(card=card, points=300)
    record(desk, identifier=card.number, lines=[("SHOE-2", 2)], points_to_redeem="200")
    receipt = Receipt.objects.get()
    card.refresh_from_db()
    assert card.points == 300 - 200 + 176

    with caplog.at_level(logging.INFO, logger="crm.desk"):
        response = desk.post(
            reverse("desk:receipt_void", args=[receipt.pk]),
            {"reason": "Customer changed their mind"},
        )

    assert response.status_code == 302
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED
    assert receipt.void_reason == "Customer changed their mind"
    card.refresh_from_db()
    assert card.points == 300
    assert sum(card.transactions.values_list("points", flat=True)) == 300
    customer.stats.refresh_from_db()
    assert customer.stats.orders == 0
    logged = [r.getMessage() for r in caplog.records if "voided" in r.getMessage()]
    assert len(logged) == 1
    assert receipt.number in logged[0]
    assert "card_points_adjusted=+24" in logged[0]
    assert f"clerk_id={desk_clerk.pk}" in logged[0]
    for personal in (customer.email, customer.first_name, card.number, "changed"):
        assert personal not in logged[0]


def test_void_asks_for_a_reason(desk, products):
    record(desk, lines=[("SHOE-1", 1)])
    receipt = Receipt.objects.get()

    form_page = desk.get(reverse("desk:receipt_void", args=[receipt.pk]))
    response = desk.post(
        reverse("desk:receipt_void", args=[receipt.pk]), {"reason": ""}
    )

    assert 'name="reason"' in form_page.content.decode()
    assert response.status_code == 200
    assert response.context["form"].errors["reason"]
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.COMPLETED


def test_void_of_a_sale_whose_points_were_spent_explains_why_not(desk, products, card):
    record(desk, identifier=card.number, lines=[("SHOE-2", 1)])
    receipt = Receipt.objects.get()
    record(desk, identifier=card.number, lines=[("BAG-1", 1)], points_to_redeem="89")

    response = desk.post(
        reverse("desk:receipt_void", args=[receipt.pk]), {"reason": "Returned"}
    )

    assert response.status_code == 200
    assert "were already spent" in str(response.context["form"].non_field_errors())


def test_receipt_list_shows_todays_sales_of_the_clerks_store_only(
    desk, store, other_store, products, django_assert_max_num_queries
):
    for index in range(5):
        receipt_record(
            store=store,
            customer=CustomerFactory(),
            payment_method="card",
            lines=[LineInput("BAG-1", index + 1)],
        )
    receipt_record(store=store, payment_method="cash", lines=[LineInput("BAG-1", 1)])
    old = receipt_record(
        store=store,
        payment_method="cash",
        lines=[LineInput("BAG-1", 1)],
        purchased_at=timezone.now() - timedelta(days=2),
    )
    elsewhere = receipt_record(
        store=other_store, payment_method="cash", lines=[LineInput("BAG-1", 1)]
    )

    # Session, user, store, page count, page of receipts with customers and cards.
    with django_assert_max_num_queries(6):
        response = desk.get(reverse("desk:receipt_list"))

    numbers = [receipt.number for receipt in response.context["page"]]
    assert len(numbers) == 6
    assert old.number not in numbers
    assert elsewhere.number not in numbers


def test_receipt_list_searches_by_number_and_by_customer(
    desk, store, products, customer
):
    mine = receipt_record(
        store=store,
        customer=customer,
        payment_method="card",
        lines=[LineInput("BAG-1", 1)],
        purchased_at=timezone.now() - timedelta(days=10),
    )
    other = receipt_record(
        store=store, payment_method="card", lines=[LineInput("BAG-1", 1)]
    )

    by_number = desk.get(reverse("desk:receipt_list"), {"q": mine.number})
    by_tail = desk.get(reverse("desk:receipt_list"), {"q": mine.number[-7:]})
    by_email = desk.get(reverse("desk:receipt_list"), {"q": "Joe@Example.com"})
    by_name = desk.get(reverse("desk:receipt_list"), {"q": customer.first_name})

    for response in (by_number, by_tail, by_email, by_name):
        assert [r.pk for r in response.context["page"]] == [mine.pk]
    assert other.number in desk.get(reverse("desk:receipt_list")).content.decode()


def test_desk_shows_times_on_the_stores_clock(desk, store, products):
    store.time_zone = "America/New_York"
    store.save()
    receipt = receipt_record(
        store=store, payment_method="cash", lines=[LineInput("BAG-1", 1)]
    )

    page = desk.get(reverse("desk:receipt_detail", args=[receipt.pk])).content.decode()

    local = timezone.localtime(receipt.purchased_at, store.zone)
    assert local.strftime("%H:%M") in page


# The benchmark


def test_bench_desk_records_and_times_sales_through_the_desk(store, products, card):
    out = StringIO()

    call_command(
        "bench", "desk", "--customers", "1", "--sales", "5", "--warmup", "2", stdout=out
    )

    report = out.getvalue()
    assert re.search(r"median [\d.]+ ms, p95 [\d.]+ ms", report)
    assert re.search(r"\d{2} SQL statements per sale", report)
    assert re.search(r"receipt_record alone, .*: median [\d.]+ ms", report)
    # Warm-up, one sale counting queries, the timed ones through the view and as
    # many straight through the service.
    assert (
        Receipt.objects.filter(clerk__username="bench-clerk").count() == 2 + 1 + 5 + 5
    )


def test_bench_refuses_a_database_with_too_few_customers(store, customer):
    with pytest.raises(CommandError, match="fewer than the 10 asked for"):
        call_command("bench", "desk", "--customers", "10", stdout=StringIO())
