"""Blocking a card, reporting it lost and making it usable again."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import ValidationError

from crm.models import LoyaltyCard, Receipt
from crm.services import (
    LineInput,
    customer_erase,
    loyalty_card_replace,
    loyalty_card_status_set,
    points_earn,
    receipt_record,
)
from segments.models import DirtyCustomer

from .test_admin import admin_url, messages_of

pytestmark = pytest.mark.django_db


def sale_with(card, store):
    return receipt_record(
        store=store,
        loyalty_card=card,
        payment_method="card",
        lines=[LineInput("BAG-1", 1)],
    )


@pytest.mark.parametrize(
    "status", [LoyaltyCard.Status.BLOCKED, LoyaltyCard.Status.LOST]
)
def test_a_closed_card_is_refused_at_the_till_until_made_usable_again(
    card, store, products, status
):
    DirtyCustomer.objects.all().delete()

    closed = loyalty_card_status_set(card=card, status=status)

    assert LoyaltyCard.objects.get(pk=card.pk).status == status
    # The holder's segments are looked at again.
    assert DirtyCustomer.objects.filter(customer=card.customer).exists()
    with pytest.raises(ValidationError) as exc:
        sale_with(closed, store)
    assert exc.value.error_dict["loyalty_card"][0].code == "card_not_active"
    assert not Receipt.objects.exists()

    usable = loyalty_card_status_set(card=card, status=LoyaltyCard.Status.ACTIVE)

    assert sale_with(usable, store).points_earned == 24


def test_an_unknown_status_is_refused(card):
    with pytest.raises(ValidationError) as exc:
        loyalty_card_status_set(card=card, status="stolen")

    assert exc.value.error_dict["status"][0].code == "invalid_choice"
    assert LoyaltyCard.objects.get(pk=card.pk).status == LoyaltyCard.Status.ACTIVE


def test_a_card_closed_by_an_erasure_stays_closed(joe):
    card = LoyaltyCard.objects.get(customer=joe)
    customer_erase(customer=joe)

    with pytest.raises(ValidationError) as exc:
        loyalty_card_status_set(card=card, status=LoyaltyCard.Status.ACTIVE)

    assert exc.value.error_dict["loyalty_card"][0].code == "customer_erased"
    assert LoyaltyCard.objects.get(pk=card.pk).status == LoyaltyCard.Status.BLOCKED


def test_the_admin_reports_cards_lost_and_makes_them_usable_again(admin_client, card):
    url = admin_url("loyaltycard", "changelist")

    lost = admin_client.post(
        url, {"action": "report_lost", ACTION_CHECKBOX_NAME: [card.pk]}
    )
    assert LoyaltyCard.objects.get(pk=card.pk).status == LoyaltyCard.Status.LOST
    assert any("Reported 1 card(s) lost" in m for m in messages_of(lost))

    admin_client.post(url, {"action": "reactivate", ACTION_CHECKBOX_NAME: [card.pk]})
    assert LoyaltyCard.objects.get(pk=card.pk).status == LoyaltyCard.Status.ACTIVE


def test_a_replacement_card_takes_over_the_points_and_the_old_one_is_lost(
    card, store, products
):
    points_earn(card=card, points=120)

    new = loyalty_card_replace(card=card, number="1234567812345670")

    card.refresh_from_db()
    assert (new.number, new.customer, new.tier) == (
        "1234567812345670",
        card.customer,
        card.tier,
    )
    assert (card.points, new.points, card.status) == (0, 120, LoyaltyCard.Status.LOST)
    # Both ledgers still add up to their balances.
    for each in (card, new):
        assert each.points == sum(each.transactions.values_list("points", flat=True))
    assert sale_with(new, store).points_earned == 24


def test_the_admin_replaces_a_card_and_says_with_which(admin_client, card):
    points_earn(card=card, points=30)

    response = admin_client.post(
        admin_url("loyaltycard", "changelist"),
        {"action": "replace", ACTION_CHECKBOX_NAME: [card.pk]},
    )

    new = LoyaltyCard.objects.exclude(pk=card.pk).get()
    assert new.points == 30
    assert any(
        f"replaced by {new.number}, with its 30 points" in m
        for m in messages_of(response)
    )


def test_an_erased_holders_card_is_not_replaced(joe):
    card = LoyaltyCard.objects.get(customer=joe)
    customer_erase(customer=joe)

    with pytest.raises(ValidationError):
        loyalty_card_replace(card=card)

    assert LoyaltyCard.objects.filter(customer=joe).count() == 1
