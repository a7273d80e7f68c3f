"""What each API caller may see: every list and detail starts from these.

A till sees only what its stores serve. A store *serves* a customer who has it as
home store, bought there (a receipt) or was in contact there (a contact with the
store); everyone with a reading role other than till sees every customer.
"""

from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet

from crm import hooks
from crm.models import (
    Consent,
    Contact,
    Customer,
    LoyaltyCard,
    LoyaltyTransaction,
    Receipt,
    ReceiptLine,
)

from .permissions import sees_all, till_store_ids


def customers_served_condition(store_ids) -> Q:
    """Customers that at least one of `store_ids` serves."""
    store_ids = list(store_ids)
    return (
        Q(home_store_id__in=store_ids)
        | Exists(
            Receipt.objects.filter(customer_id=OuterRef("pk"), store_id__in=store_ids)
        )
        | Exists(
            Contact.objects.filter(customer_id=OuterRef("pk"), store_id__in=store_ids)
        )
    )


def customer_visible_list(*, user) -> QuerySet[Customer]:
    """The customers the caller may read, with what the customer resource shows."""
    customers = Customer.objects.select_related(
        "stats",
        "stats__favourite_category",
        "home_store",
    ).prefetch_related(
        "tags",
        Prefetch(
            "consents",
            queryset=Consent.objects.latest_per_channel(),
            to_attr="api_current_consents",
        ),
    )
    # What the apps built on crm show of a customer (crm.hooks.customer_api_fields).
    for receiver in hooks.customer_api_queryset.receivers:
        customers = receiver(queryset=customers)
    if sees_all(user):
        return customers
    store_ids = till_store_ids(user)
    if not store_ids:
        return customers.none()
    return customers.filter(customers_served_condition(store_ids))


def customer_scope(*, user) -> QuerySet[Customer]:
    """The customers the caller may read or write, without the extras."""
    if sees_all(user):
        return Customer.objects.all()
    store_ids = till_store_ids(user)
    if not store_ids:
        return Customer.objects.none()
    return Customer.objects.filter(customers_served_condition(store_ids))


def customer_in_scope(*, user, customer_id: int) -> Customer | None:
    """The customer with this id if the caller may read or write them, else None.

    Same answer as `customer_scope(...).filter(pk=...)`, cheaper for the usual
    case of a till's own customer: one plain read by key, and the served-by
    subqueries only for a customer whose home is another store.
    """
    customer = Customer.objects.filter(pk=customer_id).first()
    if customer is None:
        return None
    if sees_all(user):
        return customer
    store_ids = till_store_ids(user)
    if customer.home_store_id in store_ids:
        return customer
    if store_ids and customer_scope(user=user).filter(pk=customer_id).exists():
        return customer
    return None


def receipt_visible_list(*, user) -> QuerySet[Receipt]:
    receipts = Receipt.objects.select_related("store", "loyalty_card").prefetch_related(
        Prefetch("lines", queryset=ReceiptLine.objects.select_related("product"))
    )
    if sees_all(user):
        return receipts
    return receipts.filter(store_id__in=list(till_store_ids(user)))


def contact_visible_list(*, user) -> QuerySet[Contact]:
    contacts = Contact.objects.select_related("store")
    if sees_all(user):
        return contacts
    return contacts.filter(store_id__in=list(till_store_ids(user)))


def loyalty_card_visible_list(*, user) -> QuerySet[LoyaltyCard]:
    cards = LoyaltyCard.objects.select_related("issuing_store")
    if sees_all(user):
        return cards
    store_ids = list(till_store_ids(user))
    return cards.filter(
        Q(issuing_store_id__in=store_ids)
        | Q(customer__in=customer_scope(user=user).values("pk"))
    )


def loyalty_transaction_list(*, card: LoyaltyCard) -> QuerySet[LoyaltyTransaction]:
    return LoyaltyTransaction.objects.filter(card=card)


def consent_ledger_list(*, customer: Customer) -> QuerySet[Consent]:
    return Consent.objects.filter(customer=customer)
