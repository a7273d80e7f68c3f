"""Reads for one use case each: the admin's customer and loyalty card pages.

Every selector returns a list, so the page runs each query exactly once however
often the template walks the rows. A customer may have thousands of contacts and
consent entries; the selectors read only the newest ones, through the indexes that
start with the customer (or card) and the time.
"""

from dataclasses import dataclass

from crm.models import (
    Channel,
    Consent,
    Contact,
    Customer,
    CustomerCategoryStats,
    LoyaltyCard,
    LoyaltyTransaction,
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
