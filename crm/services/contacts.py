from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from crm import hooks
from crm.errors import customer_erased_refuse
from crm.models import Contact, Customer, CustomerStats, Receipt, Store


class ContactRef(NamedTuple):
    customer_id: int
    contact_id: int | None


def contact_announce(*, contacts: Sequence[ContactRef]) -> None:
    """Tell the `contacts_recorded` hook's receivers (the segment engine) in this
    transaction.

    Receivers run inside the transaction that records the contact, so that what
    they write (for example "this customer needs re-evaluating") commits or rolls
    back with the contact itself; they defer any task to `transaction.on_commit`.
    """
    if not contacts:
        return
    hooks.contacts_recorded.send(contacts=list(contacts))


def contact_record(
    *,
    customer: Customer,
    kind: str,
    channel: str,
    occurred_at: datetime | None = None,
    store: Store | None = None,
    receipt: Receipt | None = None,
    payload: dict[str, Any] | None = None,
    last_contact_move: bool = True,
) -> Contact:
    """Record one touchpoint, move the customer's last contact, announce it.

    `last_contact_move=False` leaves the customer's last contact to a statistics
    refresh that the caller runs next in the same transaction.
    """
    # Checked before the transaction: invalid input never touches it, so callers
    # such as bulk imports carry on with the next item. The writes below need no
    # savepoint of their own (two statements fewer inside a sale).
    contact = contact_build(
        customer=customer,
        kind=kind,
        channel=channel,
        occurred_at=occurred_at,
        store=store,
        receipt=receipt,
        payload=payload,
    )
    with transaction.atomic(savepoint=False):
        contact.save()
        if last_contact_move:
            # Only ever moves forward: a late-arriving old event must not hide a
            # newer one.
            CustomerStats.objects.filter(
                Q(last_contact_at__isnull=True)
                | Q(last_contact_at__lt=contact.occurred_at),
                customer_id=customer.pk,
            ).update(last_contact_at=contact.occurred_at)
        contact_announce(contacts=[ContactRef(customer.pk, contact.pk)])
    return contact


def contact_build(
    *,
    customer: Customer,
    kind: str,
    channel: str,
    occurred_at: datetime | None = None,
    store: Store | None = None,
    receipt: Receipt | None = None,
    payload: dict[str, Any] | None = None,
) -> Contact:
    """A checked, unsaved contact (for contacts_record_many); ValidationError if bad."""
    customer_erased_refuse(customer)
    contact = Contact(
        customer=customer,
        kind=kind,
        channel=channel,
        occurred_at=occurred_at or timezone.now(),
        store=store,
        receipt=receipt,
        payload=payload or {},
    )
    contact.full_clean(exclude=["customer", "store", "receipt"])
    return contact


@transaction.atomic
def contacts_record_many(*, contacts: Sequence[Contact]) -> list[Contact]:
    """Store contacts built by contact_build in a constant number of statements.

    One INSERT for the contacts, one UPDATE moving each customer's last contact
    forward, and one announcement of the batch to the segment engine.
    """
    if not contacts:
        return []
    saved = Contact.objects.bulk_create(contacts)
    newest = Subquery(
        Contact.objects.filter(
            pk__in=[c.pk for c in saved], customer_id=OuterRef("customer_id")
        )
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    # Only ever moves forward, as in contact_record.
    CustomerStats.objects.filter(customer_id__in={c.customer_id for c in saved}).filter(
        Q(last_contact_at__isnull=True) | Q(last_contact_at__lt=newest)
    ).update(last_contact_at=newest)
    contact_announce(contacts=[ContactRef(c.customer_id, c.pk) for c in saved])
    return saved
