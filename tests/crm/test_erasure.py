"""Erasing a customer's personal data: what goes, what stays, what is refused."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict

from crm.models import (
    Consent,
    Contact,
    Customer,
    CustomerStats,
    LoyaltyCard,
    Receipt,
)
from crm.services import (
    LineInput,
    consent_record,
    contact_record,
    customer_create,
    customer_erase,
    customer_update,
    loyalty_card_issue,
    receipt_record,
)
from crm.services.erasure import ERASED_VALUES
from crm.webhooks.models import WebhookDelivery
from crm.webhooks.services import (
    customer_created_emit,
    webhook_subscription_create,
)
from segments.selectors import segment_is_member
from segments.services.engine import dirty_drain, recompute_all
from tests.segments.factories import SegmentFactory

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

PUBLIC_URL = "https://93.184.216.34/hook"


@pytest.fixture
def joe(store, products):
    joe = customer_create(
        email="joe.bloggs@example.com",
        phone="+31612345678",
        first_name="Joe",
        last_name="Bloggs",
        city="Utrecht",
        postal_code="3511 AB",
        address="Oudegracht 1",
        occupation="Baker",
        home_store=store,
        tags=["running"],
    )
    for channel in ("email", "sms"):
        consent_record(
            customer=joe,
            channel=channel,
            granted=True,
            source="store",
            wording="Offers, please",
        )
    card = loyalty_card_issue(customer=joe, store=store)
    receipt_record(
        store=store,
        customer=joe,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("SHOE-1", 1)],
    )
    contact_record(
        customer=joe,
        kind=Contact.Kind.WEB_VISIT,
        channel="online",
        payload={"page": "/shoes?email=joe.bloggs@example.com"},
    )
    return joe


def current_consents(customer) -> dict[str, str]:
    return dict(
        Consent.objects.filter(customer=customer)
        .latest_per_channel()
        .values_list("channel", "status")
    )


def test_erasing_blanks_the_person_and_keeps_the_anonymous_record(joe, admin_user):
    stats_before = model_to_dict(CustomerStats.objects.get(customer=joe))
    ledger_before = Consent.objects.filter(customer=joe).count()

    erased = customer_erase(customer=joe, by=admin_user)

    stored = Customer.objects.get(pk=joe.pk)
    assert stored.erased_at is not None
    assert {field: getattr(stored, field) for field in ERASED_VALUES} == ERASED_VALUES
    assert erased.erased_at == stored.erased_at
    assert list(stored.tags.all()) == []
    assert str(stored) == f"#{joe.pk}"
    # Every consent withdrawn, by whom; the earlier entries stay as the ledger.
    assert current_consents(joe) == {"email": "withdrawn", "sms": "withdrawn"}
    assert Consent.objects.filter(customer=joe).count() == ledger_before + 2
    assert set(
        Consent.objects.filter(customer=joe, status="withdrawn").values_list(
            "recorded_by", flat=True
        )
    ) == {admin_user.pk}
    payloads = list(
        Contact.objects.filter(customer=joe).values_list("payload", flat=True)
    )
    assert len(payloads) >= 2
    assert all(payload == {} for payload in payloads)
    cards = LoyaltyCard.objects.filter(customer=joe).values_list("status", flat=True)
    assert list(cards) == [LoyaltyCard.Status.BLOCKED]
    # The sale and the statistics stay, anonymous.
    assert Receipt.objects.filter(customer=joe).count() == 1
    assert model_to_dict(CustomerStats.objects.get(customer=joe)) == stats_before


def test_erasing_twice_is_harmless(joe):
    first = customer_erase(customer=joe)
    consents = Consent.objects.count()

    again = customer_erase(customer=Customer.objects.get(pk=joe.pk))

    assert again.erased_at == first.erased_at
    assert Consent.objects.count() == consents


def test_the_person_can_come_back_as_a_new_customer(joe):
    customer_erase(customer=joe)

    back = customer_create(email="joe.bloggs@example.com", first_name="Joe")

    assert back.pk != joe.pk
    assert Customer.objects.filter(email__iexact="joe.bloggs@example.com").get() == back


@pytest.mark.parametrize(
    "write",
    [
        lambda c, store: customer_update(customer=c, first_name="Joe"),
        lambda c, store: consent_record(
            customer=c, channel="email", granted=True, source="store", wording="Yes"
        ),
        lambda c, store: contact_record(
            customer=c, kind=Contact.Kind.WEB_VISIT, channel="online"
        ),
        lambda c, store: receipt_record(
            store=store,
            customer=c,
            payment_method="cash",
            lines=[LineInput("BAG-1", 1)],
        ),
        lambda c, store: loyalty_card_issue(customer=c, store=store),
    ],
    ids=["update", "consent", "contact", "sale", "card"],
)
def test_nothing_new_is_recorded_about_an_erased_customer(joe, store, write):
    customer_erase(customer=joe)
    erased = Customer.objects.get(pk=joe.pk)
    counts = (Consent.objects.count(), Contact.objects.count(), Receipt.objects.count())

    with pytest.raises(ValidationError) as exc:
        write(erased, store)

    assert [e.code for e in exc.value.error_dict["customer"]] == ["customer_erased"]
    assert (
        Consent.objects.count(),
        Contact.objects.count(),
        Receipt.objects.count(),
    ) == counts


def test_segments_about_the_person_let_the_record_go(joe):
    in_utrecht = SegmentFactory(
        slug="utrecht", rules={"field": "city", "op": "in", "value": ["utrecht"]}
    )
    buyers = SegmentFactory(slug="buyers")
    recompute_all()
    assert segment_is_member(segment=in_utrecht, customer=joe)

    customer_erase(customer=joe)
    dirty_drain()

    assert not segment_is_member(segment=in_utrecht, customer=joe)
    # What the anonymous record did still counts.
    assert segment_is_member(segment=buyers, customer=joe)


def test_unsent_deliveries_lose_the_person_and_receivers_are_told(
    joe, store, admin_user, settings
):
    warehouse = webhook_subscription_create(
        name="Warehouse", url=PUBLIC_URL, events=["customer.created"], owner=admin_user
    )
    ads = webhook_subscription_create(
        name="Ads",
        url=PUBLIC_URL,
        events=["customer.erased"],
        consent_channel="social_ads",
        owner=admin_user,
    )
    other = customer_create(email="ann@example.com", first_name="Ann", home_store=store)
    customer_created_emit(customer=joe)
    customer_created_emit(customer=other)

    customer_erase(customer=joe)

    bodies = [
        json.loads(body)["data"][0]
        for body in WebhookDelivery.objects.filter(subscription=warehouse)
        .order_by("pk")
        .values_list("body", flat=True)
    ]
    mine = [p for p in bodies if p["id"] == joe.pk]
    assert mine
    assert all(
        (p["email"], p["first_name"], p["last_name"]) == (None, None, None)
        for p in mine
    )
    ann = [p for p in bodies if p["id"] == other.pk]
    assert ann[0]["email"] == "ann@example.com"
    # The ad platform hears of the erasure although the customer never agreed to
    # social ads: it must delete what it holds.
    (notice,) = WebhookDelivery.objects.filter(subscription=ads)
    assert notice.event == "customer.erased"
    assert json.loads(notice.body)["data"] == [
        {"id": joe.pk, "erased_at": json.loads(notice.body)["data"][0]["erased_at"]}
    ]
