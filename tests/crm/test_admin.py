from datetime import timedelta

import factory
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from stdnum import luhn

from crm.models import (
    Consent,
    Contact,
    Customer,
    CustomerCategoryStats,
    CustomerStats,
    LoyaltyCard,
    LoyaltyTransaction,
    Receipt,
    StaffMember,
    Tag,
)
from crm.services import (
    LineInput,
    consent_record,
    points_earn,
    points_redeem,
    receipt_record,
)
from tests.crm.factories import (
    CustomerFactory,
    LoyaltyCardFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


class TagFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tag
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Interest {n}")
    slug = factory.Sequence(lambda n: f"interest-{n}")


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contact

    customer = factory.SubFactory(CustomerFactory)
    kind = Contact.Kind.WEB_VISIT
    channel = Contact.ContactChannel.ONLINE
    occurred_at = factory.LazyFunction(timezone.now)


def admin_url(model_name: str, view: str, *args) -> str:
    return reverse(f"admin:crm_{model_name}_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def staff_with(client, *codenames):
    user = UserFactory(username="limited", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client.force_login(user)
    return user


def sale(store, customer, card, products, **kwargs) -> Receipt:
    return receipt_record(
        store=store,
        customer=customer,
        loyalty_card=card,
        payment_method=Receipt.PaymentMethod.CARD,
        lines=[LineInput("SHOE-1", 1), LineInput("BAG-1", 2)],
        **kwargs,
    )


@pytest.fixture
def populated(store, clerk, customer, card, products, admin_user):
    """One row of every CRM model, written the way production writes them."""
    tag = TagFactory(name="Running", slug="running")
    customer.tags.add(tag)
    receipt = sale(store, customer, card, products, clerk=clerk)
    consent_record(
        customer=customer,
        channel="email",
        granted=True,
        source=Consent.Source.STORE,
        wording="Yes, email me offers.",
        recorded_by=clerk,
    )
    return {
        "store": store,
        "staffmember": StaffMember.objects.get(user=clerk),
        "tag": tag,
        "customer": customer,
        "consent": Consent.objects.get(customer=customer),
        "loyaltycard": card,
        "loyaltytransaction": LoyaltyTransaction.objects.get(card=card),
        "category": products["SHOE-1"].category,
        "product": products["SHOE-1"],
        "receipt": receipt,
        "contact": Contact.objects.get(receipt=receipt),
        "customerstats": CustomerStats.objects.get(customer=customer),
        "customercategorystats": CustomerCategoryStats.objects.filter(
            customer=customer
        ).first(),
    }


ALL_MODELS = [
    "store",
    "staffmember",
    "tag",
    "customer",
    "consent",
    "loyaltycard",
    "loyaltytransaction",
    "category",
    "product",
    "receipt",
    "contact",
    "customerstats",
    "customercategorystats",
]
ADDABLE = {
    "store",
    "staffmember",
    "tag",
    "customer",
    "consent",
    "loyaltycard",
    "category",
    "product",
}


# Every page renders


@pytest.mark.parametrize("model_name", ALL_MODELS)
def test_changelist_and_change_page_render_for_every_model(
    admin_client, populated, model_name
):
    obj = populated[model_name]

    changelist = admin_client.get(admin_url(model_name, "changelist"))
    change = admin_client.get(admin_url(model_name, "change", obj.pk))

    assert changelist.status_code == 200
    assert change.status_code == 200


@pytest.mark.parametrize("model_name", ALL_MODELS)
def test_add_page_renders_only_where_the_admin_may_add(
    admin_client, populated, model_name
):
    response = admin_client.get(admin_url(model_name, "add"))

    assert response.status_code == (200 if model_name in ADDABLE else 403)


@pytest.mark.parametrize(
    "model_name",
    ["customer", "loyaltycard", "loyaltytransaction", "receipt", "contact"],
)
def test_rows_that_services_write_cannot_be_deleted_in_the_admin(
    admin_client, populated, model_name
):
    obj = populated[model_name]

    response = admin_client.get(admin_url(model_name, "delete", obj.pk))

    assert response.status_code == 403


def test_customer_autocomplete_finds_customers_by_email(admin_client, populated):
    response = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "crm",
            "model_name": "consent",
            "field_name": "customer",
            "term": "joe@",
        },
    )

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == [
        str(populated["customer"].pk)
    ]


# Query counts stay flat however many rows a page shows


def get_counted(client, url, assert_max_num_queries, bound):
    # The first request fills process-wide caches (content types), so the second
    # one counts only what the page itself costs.
    client.get(url)
    with assert_max_num_queries(bound):
        return client.get(url)


# Session and user, then: the segment and home store filters, the count, the page of
# customers.
CUSTOMER_CHANGELIST_QUERIES = 6
# ... the store filter, the count, the page, two for the date hierarchy.
RECEIPT_CHANGELIST_QUERIES = 7
# ... the customer with its statistics, tags (the form's value and the widget's
# choices), the home store's widget choice, current consents, consent ledger,
# cards, categories bought, recent contacts; the segments panel (2); the persona
# panel (4: active personas, the segments' rules, every persona rule's conditions in
# one query, the stored assignment), however many personas there are.
CUSTOMER_CHANGE_PAGE_QUERIES = 17
# ... the receipt with store, clerk, customer and card, its lines, its points.
RECEIPT_CHANGE_PAGE_QUERIES = 5


@pytest.mark.parametrize("rows", [5, 30])
def test_customer_changelist_query_count_does_not_grow_with_rows(
    admin_client, django_assert_max_num_queries, store, rows
):
    for customer in CustomerFactory.create_batch(rows, home_store=store):
        LoyaltyCardFactory(customer=customer)

    response = get_counted(
        admin_client,
        admin_url("customer", "changelist"),
        django_assert_max_num_queries,
        CUSTOMER_CHANGELIST_QUERIES,
    )

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


@pytest.mark.parametrize("rows", [5, 30])
def test_receipt_changelist_query_count_does_not_grow_with_rows(
    admin_client, django_assert_max_num_queries, store, products, rows
):
    for customer in CustomerFactory.create_batch(rows):
        sale(store, customer, LoyaltyCardFactory(customer=customer), products)

    response = get_counted(
        admin_client,
        admin_url("receipt", "changelist"),
        django_assert_max_num_queries,
        RECEIPT_CHANGELIST_QUERIES,
    )

    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == rows


def test_customer_page_shows_the_latest_20_of_50_contacts_in_bounded_queries(
    admin_client, django_assert_max_num_queries, populated
):
    customer = populated["customer"]
    customer.home_store = populated["store"]
    customer.save(update_fields=["home_store"])
    now = timezone.now()
    ContactFactory.create_batch(
        50,
        customer=customer,
        occurred_at=factory.Sequence(lambda n: now - timedelta(days=n + 1)),
        payload=factory.Sequence(lambda n: {"n": n}),
    )

    response = get_counted(
        admin_client,
        admin_url("customer", "change", customer.pk),
        django_assert_max_num_queries,
        CUSTOMER_CHANGE_PAGE_QUERIES,
    )

    assert response.status_code == 200
    contacts = response.context["recent_contacts"]
    assert len(contacts) == 20
    assert response.content.decode().count('class="recent-contact"') == 20
    # The purchase (just now) comes first, the oldest web visits are left out.
    assert contacts[0].kind == Contact.Kind.PURCHASE
    assert contacts[-1].payload == {"n": 18}


def test_customer_page_shows_stats_consents_and_cards(admin_client, populated):
    customer = populated["customer"]

    response = admin_client.get(admin_url("customer", "change", customer.pk))

    page = response.content.decode()
    consents = {row.channel: row for row in response.context["current_consents"]}
    assert consents["email"].granted
    assert consents["sms"].consent is None
    assert populated["loyaltycard"].number in page
    # 59.95 + 2 x 24.50
    assert "EUR 108.95" in page
    assert response.context["category_stats"][0].category.slug == "shoes"


def test_receipt_change_page_runs_a_bounded_number_of_queries(
    admin_client, django_assert_max_num_queries, populated
):
    receipt = populated["receipt"]

    response = get_counted(
        admin_client,
        admin_url("receipt", "change", receipt.pk),
        django_assert_max_num_queries,
        RECEIPT_CHANGE_PAGE_QUERIES,
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "EUR 59.95" in page
    assert "EUR 108.95" in page


# Customers


def customer_form_data(**overrides) -> dict:
    data = {
        "first_name": "Ann",
        "last_name": "Jansen",
        "email": "",
        "phone": "",
        "birth_date": "",
        "gender": "",
        "language": "nl",
        "address": "",
        "postal_code": "",
        "city": "Utrecht",
        "region": "",
        "country": "NL",
        "income_band": "",
        "occupation": "",
        "family_situation": "",
        "preferred_channel": "",
        "social_followers": "0",
        "service_effort": "1",
        "home_store": "",
        "source": Customer.Source.STORE,
    }
    data.update(overrides)
    return data


def test_customer_added_in_admin_goes_through_the_service(admin_client, store):
    tag = TagFactory(name="Running shoes", slug="running")

    response = admin_client.post(
        admin_url("customer", "add"),
        customer_form_data(
            email=" Ann@Example.COM ", home_store=store.pk, tags=[tag.pk]
        ),
    )

    assert response.status_code == 302
    customer = Customer.objects.get()
    # The service lowercases the address and creates the statistics row.
    assert customer.email == "ann@example.com"
    assert CustomerStats.objects.filter(customer=customer).exists()
    assert list(customer.tags.all()) == [tag]
    assert Tag.objects.count() == 1
    assert response.url == admin_url("customer", "changelist")


def test_customer_changed_in_admin_updates_fields_and_replaces_tags(
    admin_client, customer
):
    old, new = TagFactory(slug="old"), TagFactory(slug="new")
    customer.tags.add(old)

    response = admin_client.post(
        admin_url("customer", "change", customer.pk),
        customer_form_data(email="joe@example.com", city="Leiden", tags=[new.pk]),
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.city == "Leiden"
    assert list(customer.tags.all()) == [new]


def test_customer_with_a_taken_email_is_a_form_error(admin_client, customer):
    response = admin_client.post(
        admin_url("customer", "add"), customer_form_data(email="JOE@example.com")
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors
    assert Customer.objects.count() == 1


def test_a_service_refusal_on_save_is_shown_on_the_form(
    admin_client, monkeypatch, store
):
    # A rule only the service knows, or another user registering the same address
    # between validation and save.
    def refuse(**kwargs):
        Customer.objects.create(first_name="Half-written")
        raise ValidationError(
            {
                "email": ValidationError("Taken a moment ago.", code="email_taken"),
                "receipt": ValidationError("Not a form field.", code="other"),
            }
        )

    monkeypatch.setattr("crm.admin.customers.customer_create", refuse)

    response = admin_client.post(
        admin_url("customer", "add"), customer_form_data(email="ann@example.com")
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["email"] == ["Taken a moment ago."]
    assert form.non_field_errors() == ["Not a form field."]
    assert not Customer.objects.exists()


def test_search_finds_a_customer_by_email(admin_client, customer):
    CustomerFactory(email="someone.else@example.com")

    response = admin_client.get(
        admin_url("customer", "changelist"), {"q": "joe@example.com"}
    )

    assert list(response.context["cl"].result_list) == [customer]


def test_search_finds_a_customer_by_phone_as_a_clerk_types_it(admin_client):
    customer = CustomerFactory(phone="+31612345678")
    CustomerFactory(phone="+31687654321")

    response = admin_client.get(
        admin_url("customer", "changelist"), {"q": "06 12 34 56 78"}
    )

    assert list(response.context["cl"].result_list) == [customer]


def test_customer_changelist_sorts_by_total_spent(admin_client, store, products):
    big, small = CustomerFactory(), CustomerFactory()
    sale(store, big, None, products)
    receipt_record(
        store=store,
        customer=small,
        payment_method=Receipt.PaymentMethod.CASH,
        lines=[LineInput("BAG-1", 1)],
    )
    url = admin_url("customer", "changelist")
    column = admin_client.get(url).context["cl"].list_display.index("total_spent")

    response = admin_client.get(url, {"o": f"-{column}"})

    assert list(response.context["cl"].result_list) == [big, small]


def test_customer_changelist_shows_the_email_under_the_name_and_the_last_purchase_day(
    admin_client, store, products
):
    customer = CustomerFactory(first_name="Joe", last_name="Jansen", email="j@x.nl")
    sale(store, customer, None, products)

    response = admin_client.get(admin_url("customer", "changelist"))

    content = response.content.decode()
    assert response.context["cl"].list_display[1:] == [
        "customer",
        "city",
        "orders",
        "total_spent",
        "last_purchase_day",
    ]
    assert 'Joe Jansen<br><span class="quiet">j@x.nl</span></a>' in content
    assert (
        f'<td class="field-last_purchase_day">{date_format(timezone.localdate())}'
        in (content)
    )


# Consent ledger


def test_consent_cannot_be_changed_or_deleted_in_admin(admin_client, populated):
    consent = populated["consent"]
    change_url = admin_url("consent", "change", consent.pk)

    page = admin_client.get(change_url)
    changed = admin_client.post(
        change_url, {"channel": "sms", "status": "withdrawn", "wording": "x"}
    )
    deleted = admin_client.post(admin_url("consent", "delete", consent.pk))

    assert page.status_code == 200
    assert "deletelink" not in page.content.decode()
    assert 'name="_save"' not in page.content.decode()
    assert changed.status_code == 403
    assert deleted.status_code == 403
    consent.refresh_from_db()
    assert (consent.channel, consent.status) == ("email", "granted")


def test_consent_added_in_admin_is_appended_to_the_ledger(
    admin_client, admin_user, populated
):
    customer = populated["customer"]
    first = populated["consent"]

    response = admin_client.post(
        admin_url("consent", "add"),
        {
            "customer": customer.pk,
            "channel": "email",
            "status": Consent.Status.WITHDRAWN,
            "wording": "  Customer asked by phone to stop emails.  ",
        },
    )

    assert response.url == admin_url("customer", "change", customer.pk)
    latest = Consent.objects.filter(customer=customer).latest_per_channel().get()
    assert latest.pk != first.pk
    assert latest.status == Consent.Status.WITHDRAWN
    assert latest.source == Consent.Source.ADMIN
    assert latest.recorded_by == admin_user
    assert latest.wording == "Customer asked by phone to stop emails."
    first.refresh_from_db()
    assert first.status == Consent.Status.GRANTED
    assert Consent.objects.filter(customer=customer).count() == 2


def test_customer_page_links_to_recording_a_consent(admin_client, customer):
    page = admin_client.get(admin_url("customer", "change", customer.pk))
    add = admin_client.get(admin_url("consent", "add"), {"customer": customer.pk})

    assert f"{admin_url('consent', 'add')}?customer={customer.pk}" in (
        page.content.decode()
    )
    assert add.context["adminform"].form.initial["customer"] == str(customer.pk)


# Loyalty cards


def test_card_issued_in_admin_gets_a_generated_number(admin_client, customer, store):
    response = admin_client.post(
        admin_url("loyaltycard", "add"),
        {
            "number": "",
            "customer": customer.pk,
            "issuing_store": store.pk,
            "tier": LoyaltyCard.Tier.SILVER,
        },
    )

    assert response.status_code == 302
    card = LoyaltyCard.objects.get()
    assert luhn.is_valid(card.number)
    assert (card.customer, card.issuing_store, card.points) == (customer, store, 0)


def test_card_with_a_wrong_check_digit_is_a_form_error(admin_client, customer):
    response = admin_client.post(
        admin_url("loyaltycard", "add"),
        {"number": "2962000000001", "customer": customer.pk, "tier": "basic"},
    )

    assert response.status_code == 200
    assert "number" in response.context["adminform"].form.errors
    assert not LoyaltyCard.objects.exists()


def test_anonymous_card_is_linked_to_a_customer_in_admin(admin_client, customer):
    card = LoyaltyCardFactory(customer=None)

    response = admin_client.post(
        admin_url("loyaltycard", "change", card.pk), {"customer": customer.pk}
    )

    assert response.status_code == 302
    card.refresh_from_db()
    assert card.customer == customer


def test_registered_card_is_read_only_and_its_balance_never_editable(
    admin_client, card
):
    points_earn(card=card, points=10)
    anonymous = LoyaltyCardFactory(customer=None)

    page = admin_client.get(admin_url("loyaltycard", "change", card.pk))
    changed = admin_client.post(
        admin_url("loyaltycard", "change", card.pk), {"points": "5000", "tier": "gold"}
    )
    anonymous_page = admin_client.get(admin_url("loyaltycard", "change", anonymous.pk))

    assert page.status_code == 200
    assert changed.status_code == 403
    card.refresh_from_db()
    assert (card.points, card.tier) == (10, LoyaltyCard.Tier.BASIC)
    assert list(anonymous_page.context["adminform"].form.fields) == ["customer"]


def adjust_points(client, cards, **form):
    return client.post(
        admin_url("loyaltycard", "changelist"),
        {
            "action": "adjust_points",
            ACTION_CHECKBOX_NAME: [card.pk for card in cards],
            **form,
        },
    )


def test_adjust_points_action_asks_for_points_and_a_note(admin_client, card):
    response = admin_client.post(
        admin_url("loyaltycard", "changelist"),
        {"action": "adjust_points", ACTION_CHECKBOX_NAME: [card.pk], "index": "0"},
    )

    assert response.status_code == 200
    assert "points" in response.context["form"].fields
    assert not LoyaltyTransaction.objects.exists()


def test_adjust_points_action_writes_to_the_ledger(admin_client, card):
    response = adjust_points(
        admin_client, [card], apply="yes", points="25", note="Goodwill: late delivery"
    )

    assert response.status_code == 302
    entry = LoyaltyTransaction.objects.get(card=card)
    assert (entry.kind, entry.points, entry.note) == (
        LoyaltyTransaction.Kind.ADJUSTED,
        25,
        "Goodwill: late delivery",
    )
    card.refresh_from_db()
    assert card.points == 25


def test_adjust_points_below_zero_is_a_message_not_a_500(admin_client, card):
    points_earn(card=card, points=10)
    rich = LoyaltyCardFactory()
    points_earn(card=rich, points=100)

    response = adjust_points(
        admin_client, [card, rich], apply="yes", points="-50", note="Correction"
    )

    assert response.status_code == 302
    card.refresh_from_db()
    rich.refresh_from_db()
    assert (card.points, rich.points) == (10, 50)
    messages = messages_of(response)
    assert any(
        card.number in message and "10 points" in message for message in messages
    )
    assert "Adjusted the points of 1 card(s)." in messages


def test_adjust_points_without_a_note_shows_the_form_again(admin_client, card):
    response = adjust_points(admin_client, [card], apply="yes", points="5", note="")

    assert response.status_code == 200
    assert "note" in response.context["form"].errors
    assert not LoyaltyTransaction.objects.exists()


# Receipts


def void(client, receipts, **form):
    return client.post(
        admin_url("receipt", "changelist"),
        {
            "action": "void_receipts",
            ACTION_CHECKBOX_NAME: [receipt.pk for receipt in receipts],
            **form,
        },
    )


def test_receipts_are_read_only_in_admin(admin_client, populated):
    receipt = populated["receipt"]

    response = admin_client.post(
        admin_url("receipt", "change", receipt.pk), {"total": "0.01"}
    )

    assert response.status_code == 403


def test_void_action_asks_for_a_reason_first(admin_client, populated):
    receipt = populated["receipt"]

    response = admin_client.post(
        admin_url("receipt", "changelist"),
        {"action": "void_receipts", ACTION_CHECKBOX_NAME: [receipt.pk], "index": "0"},
    )

    assert response.status_code == 200
    assert "reason" in response.context["form"].fields
    assert receipt.number in response.content.decode()
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.COMPLETED


def test_void_action_without_a_reason_shows_the_form_again(admin_client, populated):
    receipt = populated["receipt"]

    response = void(admin_client, [receipt], apply="yes", reason="  ")

    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    receipt.refresh_from_db()
    assert receipt.status == Receipt.Status.COMPLETED


def test_void_action_voids_and_reverses_the_points(admin_client, admin_user, populated):
    receipt, card = populated["receipt"], populated["loyaltycard"]
    card.refresh_from_db()
    assert card.points == receipt.points_earned > 0

    response = void(admin_client, [receipt], apply="yes", reason="Customer returned")

    assert response.status_code == 302
    receipt.refresh_from_db()
    card.refresh_from_db()
    assert receipt.status == Receipt.Status.VOIDED
    assert receipt.void_reason == "Customer returned"
    assert card.points == 0
    assert (
        LoyaltyTransaction.objects.filter(
            receipt=receipt, kind=LoyaltyTransaction.Kind.ADJUSTED
        )
        .get()
        .points
        == -receipt.points_earned
    )
    assert Contact.objects.get(
        receipt=receipt, kind=Contact.Kind.PURCHASE_VOIDED
    ).payload == {"reason": "Customer returned", "by": admin_user.pk}
    assert "Voided 1 receipt(s)." in messages_of(response)


def test_void_refused_by_the_service_is_a_message_not_a_500(
    admin_client, store, customer, card, products
):
    # Given a sale whose points were spent on a later sale
    first = sale(store, customer, card, products)
    sale(store, customer, card, products, points_to_redeem=first.points_earned)
    other = sale(store, CustomerFactory(), None, products)

    response = void(admin_client, [first, other], apply="yes", reason="Returned")

    assert response.status_code == 302
    first.refresh_from_db()
    other.refresh_from_db()
    assert first.status == Receipt.Status.COMPLETED
    assert other.status == Receipt.Status.VOIDED
    messages = messages_of(response)
    assert any(
        first.number in message and "already spent" in message for message in messages
    )
    assert "Voided 1 receipt(s)." in messages


def test_voiding_an_already_voided_receipt_only_warns(admin_client, populated):
    receipt = populated["receipt"]
    void(admin_client, [receipt], apply="yes", reason="Returned")

    response = void(admin_client, [receipt], apply="yes", reason="Twice")

    receipt.refresh_from_db()
    assert receipt.void_reason == "Returned"
    assert f"{receipt.number} was already voided." in messages_of(response)


def test_void_action_is_hidden_without_change_permission_on_receipts(client, populated):
    from django.contrib.auth.models import Permission

    from tests.crm.factories import UserFactory

    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_receipt"))
    client.force_login(viewer)

    response = client.get(admin_url("receipt", "changelist"))

    assert response.status_code == 200
    assert "void_receipts" not in response.content.decode()


def test_receipt_lines_are_shown_to_a_user_who_may_view_receipts(client, populated):
    staff_with(client, "view_receipt")

    response = client.get(admin_url("receipt", "change", populated["receipt"].pk))

    assert response.status_code == 200
    assert "SHOE-1" in response.content.decode()


def test_receipt_search_finds_a_receipt_by_number(
    admin_client, populated, store, products
):
    receipt = populated["receipt"]
    sale(store, CustomerFactory(), None, products)

    response = admin_client.get(
        admin_url("receipt", "changelist"), {"q": receipt.number.lower()}
    )

    assert list(response.context["cl"].result_list) == [receipt]


def test_card_page_shows_its_latest_ledger_entries(admin_client, card):
    points_earn(card=card, points=40)
    points_redeem(card=card, points=15)

    response = admin_client.get(admin_url("loyaltycard", "change", card.pk))

    assert [entry.points for entry in response.context["recent_transactions"]] == [
        -15,
        40,
    ]
    assert response.context["original"].points == 25


def test_customer_page_shows_only_the_panels_the_user_may_see(client, populated):
    staff_with(client, "view_customer", "view_loyaltycard")

    response = client.get(admin_url("customer", "change", populated["customer"].pk))

    assert response.status_code == 200
    assert response.context["loyalty_cards"] == [populated["loyaltycard"]]
    assert response.context["current_consents"] is None
    assert response.context["recent_contacts"] is None
    page = response.content.decode()
    assert "Record a consent decision" not in page
    assert 'name="_save"' not in page


@pytest.mark.parametrize(
    ("model_name", "lookup"),
    [
        ("contact", "customer__id__exact"),
        ("receipt", "customer__id__exact"),
        ("consent", "customer__id__exact"),
        ("loyaltytransaction", "card__id__exact"),
    ],
)
def test_links_from_the_customer_and_card_pages_filter_the_lists(
    admin_client, populated, model_name, lookup
):
    other = CustomerFactory()
    ContactFactory(customer=other)
    target = (
        populated["loyaltycard"] if lookup.startswith("card") else populated["customer"]
    )

    response = admin_client.get(
        admin_url(model_name, "changelist"), {lookup: target.pk}
    )

    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert rows
    field = lookup.split("__")[0]
    assert {getattr(row, f"{field}_id") for row in rows} == {target.pk}
