"""Reads for one use case each: the admin's customer and loyalty card pages, and a
customer's data export.

Every selector returns a list, so the page runs each query exactly once however
often the template walks the rows. A customer may have thousands of contacts and
consent entries; the selectors read only the newest ones, through the indexes that
start with the customer (or card) and the time.
"""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model, OuterRef, Prefetch, Subquery
from django.utils import timezone
from phonenumber_field.phonenumber import PhoneNumber

from crm import hooks
from crm.models import (
    Channel,
    Consent,
    Contact,
    Customer,
    CustomerCategoryStats,
    LoyaltyCard,
    LoyaltyTransaction,
    PushToken,
    Receipt,
    ReceiptLine,
)

RECENT_CONTACTS = 20
CONSENT_LEDGER_ENTRIES = 50
RECENT_CARD_TRANSACTIONS = 20


@dataclass(frozen=True)
class ChannelConsent:
    """A customer's current consent on one channel; `consent` is None if never asked."""

    channel: str
    label: str
    consent: Consent | None

    @property
    def granted(self) -> bool:
        return (
            self.consent is not None and self.consent.status == Consent.Status.GRANTED
        )


def customer_current_consents(*, customer: Customer) -> list[ChannelConsent]:
    """The customer's consent on every channel: its newest ledger entry, or none."""
    latest = {
        consent.channel: consent
        for consent in Consent.objects.filter(customer=customer)
        .latest_per_channel()
        .select_related("recorded_by")
    }
    return [
        ChannelConsent(channel=value, label=label, consent=latest.get(value))
        for value, label in Channel.choices
    ]


def customer_consent_ledger(
    *, customer: Customer, limit: int = CONSENT_LEDGER_ENTRIES
) -> list[Consent]:
    """The newest entries of the customer's consent ledger, newest first."""
    return list(
        Consent.objects.filter(customer=customer)
        .select_related("recorded_by")
        .order_by("-recorded_at", "-id")[:limit]
    )


def customer_recent_contacts(
    *, customer: Customer, limit: int = RECENT_CONTACTS
) -> list[Contact]:
    """The customer's latest contacts, newest first."""
    return list(
        Contact.objects.filter(customer=customer)
        .select_related("store", "receipt")
        .order_by("-occurred_at", "-id")[:limit]
    )


def customer_loyalty_cards(*, customer: Customer) -> list[LoyaltyCard]:
    return list(
        LoyaltyCard.objects.filter(customer=customer)
        .select_related("issuing_store")
        .order_by("-issued_at", "-id")
    )


def customer_category_stats(*, customer: Customer) -> list[CustomerCategoryStats]:
    """What the customer bought per category, biggest spend first."""
    return list(
        CustomerCategoryStats.objects.filter(customer=customer)
        .select_related("category")
        .order_by("-spent", "category__name")
    )


def loyalty_card_recent_transactions(
    *, card: LoyaltyCard, limit: int = RECENT_CARD_TRANSACTIONS
) -> list[LoyaltyTransaction]:
    """The card's latest ledger entries, newest first."""
    return list(
        LoyaltyTransaction.objects.filter(card=card)
        .select_related("receipt")
        .order_by("-created_at", "-id")[:limit]
    )


def _plain(value: Any) -> Any:
    """A value as JSON carries it: amounts as exact strings, times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, PhoneNumber):
        return value.as_e164 if value.is_valid() else str(value)
    return value


def _fields(instance: Model, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        field.name: _plain(
            getattr(instance, field.attname)
            if field.is_relation
            else getattr(instance, field.name)
        )
        for field in instance._meta.concrete_fields
        if field.name not in exclude
    }


def customer_data_export(*, customer: Customer) -> dict[str, Any]:
    """Everything Loyalist holds about a customer, for their access request.

    What the customer gave (profile, consents, their devices' push tokens), what
    they did (sales with their lines, card ledger, contacts) and what Loyalist
    made of it (statistics, segments, persona). A fixed number of queries,
    however long the history.
    """
    customer = (
        Customer.objects.select_related("home_store", "stats")
        .prefetch_related("tags")
        .get(pk=customer.pk)
    )
    profile = _fields(customer, exclude=("home_store",))
    profile["home_store"] = customer.home_store.code if customer.home_store else None
    profile["tags"] = sorted(tag.slug for tag in customer.tags.all())
    receipts = (
        Receipt.objects.filter(customer=customer)
        .select_related("store", "loyalty_card")
        .prefetch_related(
            Prefetch("lines", queryset=ReceiptLine.objects.select_related("product"))
        )
        .order_by("purchased_at", "pk")
    )
    cards = LoyaltyCard.objects.filter(customer=customer).prefetch_related(
        Prefetch(
            "transactions",
            queryset=LoyaltyTransaction.objects.select_related("receipt").order_by(
                "created_at", "pk"
            ),
        )
    )
    stats = getattr(customer, "stats", None)
    return {
        "exported_at": _plain(timezone.now()),
        "customer": profile,
        "consents": [
            _fields(consent, exclude=("customer", "recorded_by"))
            for consent in customer.consents.order_by("recorded_at", "pk")
        ],
        "push_tokens": [
            _fields(token, exclude=("id", "customer"))
            for token in customer.push_tokens.order_by("registered_at", "pk")
        ],
        "receipts": [
            {
                **_fields(
                    receipt,
                    exclude=(
                        "customer",
                        "clerk",
                        "store",
                        "loyalty_card",
                        "idempotency_key",
                    ),
                ),
                "store": receipt.store.code,
                "loyalty_card": receipt.loyalty_card.number
                if receipt.loyalty_card
                else None,
                "lines": [
                    {
                        "sku": line.product.sku,
                        "product": line.product.name,
                        "quantity": line.quantity,
                        "unit_price": _plain(line.unit_price),
                        "discount": _plain(line.discount),
                        "line_total": _plain(line.line_total),
                    }
                    for line in receipt.lines.all()
                ],
            }
            for receipt in receipts
        ],
        "loyalty_cards": [
            {
                **_fields(card, exclude=("customer", "issuing_store")),
                "transactions": [
                    {
                        "kind": t.kind,
                        "points": t.points,
                        "receipt": t.receipt.number if t.receipt else None,
                        "note": t.note,
                        "created_at": _plain(t.created_at),
                    }
                    for t in card.transactions.all()
                ],
            }
            for card in cards
        ],
        "contacts": [
            {
                "kind": contact.kind,
                "channel": contact.channel,
                "occurred_at": _plain(contact.occurred_at),
                "store": contact.store.code if contact.store else None,
                "payload": contact.payload,
            }
            for contact in customer.contacts.select_related("store").order_by(
                "occurred_at", "pk"
            )
        ],
        "statistics": _fields(stats, exclude=("customer",)) if stats else None,
        **{
            name: section
            for sections in hooks.customer_data_export_sections.send(customer=customer)
            for name, section in sections.items()
        },
    }


def push_token_newest_live(*, customer_ref: str = "customer_id") -> Subquery:
    """The newest live push token of the customer at `customer_ref` (an outer
    column), as a subquery: where push messages go.

    A customer with several devices gets the push on the one that registered last
    (the app registers on every start), not on all of them.
    """
    return Subquery(
        PushToken.objects.filter(
            customer_id=OuterRef(customer_ref), revoked_at__isnull=True
        )
        .order_by("-registered_at", "-id")
        .values("token")[:1]
    )
