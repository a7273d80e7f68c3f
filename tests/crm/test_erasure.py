"""Erasing a customer's personal data: what goes, what stays, what is refused."""

import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.utils import timezone

from crm.api.models import IdempotencyRecord
from crm.desk.selectors import desk_customer_identify
from crm.models import (
    Consent,
    Contact,
    Customer,
    CustomerStats,
    LoyaltyCard,
    Product,
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
    points_adjust,
    receipt_record,
    receipt_void,
)
from crm.services.erasure import ERASED_VALUES
from crm.webhooks.models import WebhookDelivery
from crm.webhooks.services import (
    customer_created_emit,
    webhook_delivery_attempt,
    webhook_subscription_create,
)
from segments.selectors import segment_is_member
from segments.services.engine import dirty_drain, recompute_all
from tests.api.test_webhooks import Receiver
from tests.segments.factories import SegmentFactory

pytestmark = [pytest.mark.django_db]

PUBLIC_URL = "https://93.184.216.34/hook"


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


def test_a_sale_of_an_erased_customer_can_still_be_voided(joe, products):
    receipt = Receipt.objects.get(customer=joe)
    stock = Product.objects.get(sku="SHOE-1").stock_level
    customer_erase(customer=joe)
    contacts = Contact.objects.count()

    receipt_void(receipt=receipt, reason="Returned")

    assert Receipt.objects.get(pk=receipt.pk).status == Receipt.Status.VOIDED
    assert Product.objects.get(sku="SHOE-1").stock_level == stock + 1
    assert CustomerStats.objects.get(customer=joe).orders == 0
    # Nothing new is recorded about the person.
    assert Contact.objects.count() == contacts


@pytest.mark.parametrize(
    "write",
    [
        lambda c: customer_update(customer=c, first_name="Joe"),
        lambda c: consent_record(
            customer=c, channel="email", granted=True, source="store", wording="Yes"
        ),
    ],
    ids=["update", "consent"],
)
def test_a_write_that_loaded_the_customer_before_the_erasure_is_refused(joe, write):
    loaded_before = Customer.objects.get(pk=joe.pk)
    customer_erase(customer=joe)

    with pytest.raises(ValidationError):
        write(loaded_before)

    stored = Customer.objects.get(pk=joe.pk)
    assert stored.first_name == ""
    assert current_consents(joe) == {"email": "withdrawn", "sms": "withdrawn"}


def test_erasing_again_scrubs_what_a_racing_request_wrote_and_tells_no_one_twice(
    joe, admin_user
):
    webhook_subscription_create(
        name="Ads", url=PUBLIC_URL, events=["customer.erased"], owner=admin_user
    )
    customer_erase(customer=joe)
    # As if a contact recorded by a request that read joe before the erasure
    # committed.
    Contact.objects.filter(customer=joe).update(payload={"email": "joe@x"})

    customer_erase(customer=joe)

    payloads = Contact.objects.filter(customer=joe).values_list("payload", flat=True)
    assert all(payload == {} for payload in payloads)
    assert WebhookDelivery.objects.filter(event="customer.erased").count() == 1


def test_a_grant_stamped_a_little_ahead_is_withdrawn_too(joe):
    consent_record(
        customer=joe,
        channel="social_ads",
        granted=True,
        source="api",
        wording="Ads, please",
        recorded_at=timezone.now() + timedelta(minutes=3),
    )

    customer_erase(customer=joe)

    assert current_consents(joe)["social_ads"] == "withdrawn"


def test_the_delivery_log_history_and_kept_answers_lose_the_person(joe, admin_user):
    warehouse = webhook_subscription_create(
        name="Warehouse", url=PUBLIC_URL, events=["customer.created"], owner=admin_user
    )
    customer_created_emit(customer=joe)
    WebhookDelivery.objects.filter(subscription=warehouse).update(
        status=WebhookDelivery.Status.DELIVERED
    )
    customer_type = ContentType.objects.get_for_model(Customer)
    LogEntry.objects.create(
        user=admin_user,
        content_type=customer_type,
        object_id=str(joe.pk),
        object_repr=str(joe),
        action_flag=CHANGE,
        change_message="[]",
    )
    IdempotencyRecord.objects.create(
        user=admin_user,
        scope="contacts",
        key="k1",
        request_hash="h",
        status_code=201,
        response_body={"id": 1, "customer": joe.pk, "payload": {"page": "/x"}},
    )

    customer_erase(customer=joe, by=admin_user)

    (body,) = WebhookDelivery.objects.filter(subscription=warehouse).values_list(
        "body", flat=True
    )
    assert "joe.bloggs@example.com" not in body
    assert set(
        LogEntry.objects.filter(
            content_type=customer_type, object_id=str(joe.pk)
        ).values_list("object_repr", flat=True)
    ) == {f"#{joe.pk}"}
    assert LogEntry.objects.filter(
        object_id=str(joe.pk), change_message__contains="erased"
    ).exists()
    assert not IdempotencyRecord.objects.exists()


def test_points_are_not_adjusted_by_hand_for_an_erased_customer(joe):
    card = LoyaltyCard.objects.get(customer=joe)
    customer_erase(customer=joe)

    with pytest.raises(ValidationError):
        points_adjust(card=card, points=10, note="Goodwill")


def test_a_delivery_queued_just_before_the_erasure_is_sent_without_the_person(
    joe, admin_user, settings
):
    settings.LOYALIST_WEBHOOK_ALLOW_PRIVATE = True
    with Receiver([200]) as receiver:
        warehouse = webhook_subscription_create(
            name="Warehouse",
            url=receiver.url,
            events=["customer.created"],
            owner=admin_user,
        )
        customer_erase(customer=joe)
        # Queued by an emitter that read joe's email before the erasure committed.
        delivery = WebhookDelivery.objects.create(
            subscription=warehouse,
            event="customer.created",
            body=json.dumps(
                {"event": "customer.created", "data": [{"id": joe.pk, "email": "j@x"}]}
            ),
            next_attempt_at=timezone.now(),
        )

        assert webhook_delivery_attempt(delivery_id=delivery.pk) == "delivered"

    (sent,) = [json.loads(body) for _headers, body in receiver.requests]
    assert sent["data"] == [{"id": joe.pk, "email": None}]


def test_the_till_no_longer_finds_the_record_by_the_persons_card(joe):
    card = LoyaltyCard.objects.get(customer=joe)
    customer_erase(customer=joe)

    found = desk_customer_identify(query=card.number)

    assert not found.found
    assert "erased" in found.error
