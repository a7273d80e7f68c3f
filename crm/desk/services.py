"""The desk's one write: a sale, possibly for a customer registered on the spot."""

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from crm.models import Channel, Consent, Customer, LoyaltyCard, Receipt, Store
from crm.services import (
    LineInput,
    consent_record,
    customer_create,
    loyalty_card_issue,
    receipt_record,
    receipt_void,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewCustomer:
    """A customer registered at the till while paying."""

    first_name: str = ""
    email: str = ""
    phone: str = ""
    # Marketing by email, only with a tick of its own; `consent_wording` is the
    # exact text next to that tick.
    marketing_opt_in: bool = False
    consent_wording: str = ""
    # A pre-printed card scanned for this customer; otherwise one is issued.
    card_number: str = ""


@transaction.atomic
def _customer_register(
    *, new: NewCustomer, store: Store, clerk: AbstractBaseUser, issue_card: bool
) -> tuple[Customer, LoyaltyCard | None]:
    customer = customer_create(
        first_name=new.first_name,
        email=new.email or None,
        phone=new.phone,
        home_store=store,
        source=Customer.Source.STORE,
    )
    if new.marketing_opt_in:
        consent_record(
            customer=customer,
            channel=Channel.EMAIL,
            granted=True,
            source=Consent.Source.STORE,
            wording=new.consent_wording,
            recorded_by=clerk,
        )
    card = None
    if issue_card:
        card = loyalty_card_issue(
            number=new.card_number or None, customer=customer, store=store
        )
    return customer, card


def _sale_with_registration(
    *,
    sale: Callable[..., Receipt],
    new: NewCustomer,
    store: Store,
    clerk: AbstractBaseUser,
    card: LoyaltyCard | None,
    token: str,
) -> Receipt:
    # Checked before registering, or a resubmitted form would find the
    # customer's email taken.
    existing = Receipt.objects.filter(idempotency_key=token).first()
    if existing is not None:
        return existing
    try:
        # The customer exists only if the sale does: a refused sale (points,
        # lines) leaves nobody half-registered for the corrected resubmission.
        with transaction.atomic():
            # A scanned card nobody owns yet is linked by receipt_record;
            # otherwise the new customer gets a card of their own.
            customer, issued = _customer_register(
                new=new, store=store, clerk=clerk, issue_card=card is None
            )
            return sale(customer=customer, loyalty_card=card or issued)
    except ValidationError:
        # The same form submitted twice at once: the other request registered the
        # customer (so this one found the email taken) and recorded the sale.
        existing = Receipt.objects.filter(idempotency_key=token).first()
        if existing is not None:
            return existing
        raise


def desk_sale_record(
    *,
    store: Store,
    clerk: AbstractBaseUser,
    token: str,
    lines: list[LineInput],
    payment_method: str,
    customer: Customer | None = None,
    card: LoyaltyCard | None = None,
    new_customer: NewCustomer | None = None,
    points_to_redeem: int = 0,
    send_email: bool = False,
) -> Receipt:
    """Record a desk sale, registering the customer first when asked.

    The form's token is the idempotency key: a double click or a resubmitted form
    returns the first receipt, and registers nobody twice.
    """
    sale = functools.partial(
        receipt_record,
        store=store,
        clerk=clerk,
        lines=lines,
        payment_method=payment_method,
        points_to_redeem=points_to_redeem,
        idempotency_key=token,
        send_email=send_email,
    )
    if new_customer is None:
        # receipt_record is its own transaction (and handles a repeated key).
        receipt = sale(customer=customer, loyalty_card=card)
    else:
        receipt = _sale_with_registration(
            sale=sale,
            new=new_customer,
            store=store,
            clerk=clerk,
            card=card,
            token=token,
        )
    logger.info(
        "desk sale recorded: receipt_id=%s store=%s clerk_id=%s",
        receipt.pk,
        store.code,
        clerk.pk,
    )
    return receipt


def desk_receipt_void(
    *, receipt: Receipt, reason: str, clerk: AbstractBaseUser
) -> Receipt:
    """Void a sale from the desk and log it (ids only: the reason may name people)."""
    already_voided = receipt.status == Receipt.Status.VOIDED
    store_code = receipt.store.code
    receipt = receipt_void(receipt=receipt, reason=reason, by=clerk)
    if not already_voided:
        logger.info(
            "desk sale voided: receipt_id=%s number=%s store=%s clerk_id=%s "
            "card_points_adjusted=%+d",
            receipt.pk,
            receipt.number,
            store_code,
            clerk.pk,
            receipt.points_redeemed - receipt.points_earned,
        )
    return receipt
