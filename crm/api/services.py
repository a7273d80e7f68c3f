"""The API's writes: references in a request resolved within the caller's scope,
then the CRM services.

Like the desk's services, these only orchestrate: every row is written by
crm.services. References the caller may not use read as unknown (a till cannot
find out which customer ids exist elsewhere), except stores, which every role may
list.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models.functions import Lower
from django.utils.translation import gettext as _

from crm.errors import field_error
from crm.models import Contact, Customer, LoyaltyCard, Receipt, SalesChannel, Store
from crm.services import (
    LineInput,
    consent_record,
    contact_build,
    contact_record,
    contacts_record_many,
    customer_create,
    customer_update,
    receipt_record_in_transaction,
    receipt_void,
)

from .permissions import sees_all, till_store_ids
from .selectors import customer_in_scope, customer_scope

CUSTOMER_SOURCE_BY_CHANNEL = {
    SalesChannel.STORE: Customer.Source.STORE,
    SalesChannel.ONLINE: Customer.Source.ONLINE,
    SalesChannel.PHONE: Customer.Source.API,
}


def store_for_write(*, user: AbstractBaseUser, code: str | None, field: str) -> Store:
    """The store a write names, if the caller may record things there."""
    store = Store.objects.filter(code=code).first() if code else None
    allowed = None if sees_all(user) else till_store_ids(user)
    return _store_checked(store, code=code, allowed=allowed, field=field)


def _store_checked(
    store: Store | None,
    *,
    code: str | None,
    allowed: Collection[int] | None,
    field: str,
) -> Store:
    """The store a write named, or why it may not be used (`allowed`: the store ids
    the caller may record at, None for every store)."""
    if store is None:
        raise field_error(
            field, _("No store with code '%(store)s'."), "unknown_store", store=code
        )
    if allowed is not None and store.pk not in allowed:
        raise field_error(
            field,
            _("This token may not record anything for store '%(store)s'."),
            "store_not_allowed",
            store=code,
        )
    return store


def _default_store(user: AbstractBaseUser) -> Store | None:
    """A till's store when it has exactly one, so contacts need not name it."""
    if sees_all(user):
        return None
    store_ids = till_store_ids(user)
    if len(store_ids) == 1:
        return Store.objects.filter(pk=next(iter(store_ids))).first()
    return None


def customer_for_write(
    *, user: AbstractBaseUser, customer_id: int, field: str = "customer"
) -> Customer:
    customer = customer_in_scope(user=user, customer_id=customer_id)
    if customer is None:
        raise field_error(
            field, _("No customer with id %(id)s."), "unknown_customer", id=customer_id
        )
    return customer


@transaction.atomic
def api_customer_create(*, user: AbstractBaseUser, data: dict[str, Any]) -> Customer:
    """Register a customer; a till registers them at (one of) its stores."""
    data = {"source": Customer.Source.API, **data}
    if not sees_all(user):
        store = data.get("home_store") or _default_store(user)
        if store is None or store.pk not in till_store_ids(user):
            raise field_error(
                "home_store",
                _("A till registers customers at one of its own stores."),
                "store_not_allowed",
            )
        data["home_store"] = store
    customer = customer_create(**data)
    return customer


@transaction.atomic
def api_customer_update(
    *, user: AbstractBaseUser, customer: Customer, data: dict[str, Any]
) -> Customer:
    data = dict(data)
    data.pop("created_at", None)
    store = data.get("home_store")
    if (
        store is not None
        and not sees_all(user)
        and store.pk not in till_store_ids(user)
    ):
        raise field_error(
            "home_store",
            _("A till can only make one of its own stores a customer's home store."),
            "store_not_allowed",
        )
    return customer_update(customer=customer, **data)


def api_consent_record(
    *, user: AbstractBaseUser, customer: Customer, data: dict[str, Any]
):
    return consent_record(customer=customer, recorded_by=user, **data)


def _receipt_customer(
    *, user: AbstractBaseUser, data: dict[str, Any], store: Store
) -> tuple[Customer | None, bool]:
    if data.get("customer"):
        return customer_for_write(user=user, customer_id=data["customer"]), False
    email = data.get("customer_email")
    if not email:
        return None, False
    customer = Customer.objects.by_email(email).first()
    if customer is not None:
        return customer, False
    try:
        customer = customer_create(
            email=email,
            home_store=store,
            source=CUSTOMER_SOURCE_BY_CHANNEL.get(data["channel"], Customer.Source.API),
        )
    except ValidationError as exc:
        # Registered by a concurrent sale a moment ago.
        customer = Customer.objects.by_email(email).first()
        if customer is None:
            raise ValidationError(
                {
                    f"customer_email.{k}" if k != "email" else "customer_email": v
                    for k, v in exc.error_dict.items()
                }
            ) from None
        return customer, False
    return customer, True


# Called by the receipts view inside `idempotent`'s transaction: no savepoint.
@transaction.atomic(savepoint=False)
def api_receipt_record(
    *, user: AbstractBaseUser, data: dict[str, Any]
) -> tuple[Receipt, bool]:
    """Record a sale sent by a till or web shop; returns it and whether
    `customer_email` registered a new customer (in the same transaction)."""
    store = store_for_write(user=user, code=data["store"], field="store")
    card = None
    if data.get("loyalty_card"):
        card = LoyaltyCard.objects.filter(number=data["loyalty_card"].strip()).first()
        if card is None:
            raise field_error(
                "loyalty_card",
                _("No loyalty card with number %(number)s."),
                "unknown_card",
                number=data["loyalty_card"],
            )
    customer, created = _receipt_customer(user=user, data=data, store=store)
    receipt = receipt_record_in_transaction(
        store=store,
        clerk=user,
        customer=customer,
        loyalty_card=card,
        lines=[
            LineInput(
                sku=line["sku"],
                quantity=line["quantity"],
                unit_price=line.get("unit_price"),
                discount=line.get("discount") or 0,
            )
            for line in data["lines"]
        ],
        payment_method=data["payment_method"],
        channel=data["channel"],
        purchased_at=data.get("purchased_at"),
        number=data.get("number"),
        expected_total=data.get("total"),
        points_to_redeem=data.get("points_redeemed", 0),
        send_email=data.get("send_email", False),
    )
    return receipt, created


def api_receipt_void(*, user: AbstractBaseUser, receipt: Receipt, reason: str):
    return receipt_void(receipt=receipt, reason=reason, by=user)


@dataclass(frozen=True)
class _ContactReferences:
    """The customers and stores that contacts name, looked up once for all of them.

    One contact and a batch of a thousand resolve their references the same way,
    with the same errors; only the number of items differs.
    """

    by_id: dict[int, Customer]
    by_email: dict[str, Customer]
    stores: dict[str, Store]
    default_store: Store | None
    # The stores the caller may record contacts at; None for every store.
    allowed: frozenset[int] | None

    @classmethod
    def load(
        cls, *, user: AbstractBaseUser, items: list[dict[str, Any]]
    ) -> "_ContactReferences":
        ids = {item["customer"] for item in items if item.get("customer") is not None}
        emails = {
            item["customer_email"].strip().lower()
            for item in items
            if item.get("customer") is None and item.get("customer_email")
        }
        codes = {item["store"] for item in items if item.get("store")}
        # Matched whatever the capitals, as Customer.objects.by_email does, through
        # the same lower(email) index.
        by_email = {
            customer.email.lower(): customer
            for customer in Customer.objects.alias(lowered=Lower("email")).filter(
                lowered__in=list(emails)
            )
        }
        return cls(
            by_id=customer_scope(user=user).in_bulk(list(ids)),
            by_email=by_email,
            stores=Store.objects.in_bulk(list(codes), field_name="code"),
            default_store=(
                _default_store(user)
                if any(not item.get("store") for item in items)
                else None
            ),
            allowed=None if sees_all(user) else till_store_ids(user),
        )

    def resolve(self, item: dict[str, Any]) -> tuple[Customer, Store | None]:
        """The contact's customer and store; ValidationError if the caller may not
        use them. A till's contacts always carry one of its stores."""
        if item.get("customer") is not None:
            customer = self.by_id.get(item["customer"])
            if customer is None:
                raise field_error(
                    "customer",
                    _("No customer with id %(id)s."),
                    "unknown_customer",
                    id=item["customer"],
                )
        else:
            customer = self.by_email.get(item["customer_email"].strip().lower())
            if customer is None:
                raise field_error(
                    "customer_email",
                    _("No customer with email %(email)s."),
                    "unknown_customer",
                    email=item["customer_email"],
                )
        if not item.get("store"):
            if self.default_store is None and self.allowed is not None:
                raise field_error(
                    "store",
                    _("Name the store (code) the contact happened at."),
                    "store_required",
                )
            return customer, self.default_store
        store = _store_checked(
            self.stores.get(item["store"]),
            code=item["store"],
            allowed=self.allowed,
            field="store",
        )
        return customer, store


@transaction.atomic
def api_contact_record(*, user: AbstractBaseUser, data: dict[str, Any]) -> Contact:
    """Record one contact; a till's contacts always carry one of its stores."""
    references = _ContactReferences.load(user=user, items=[data])
    customer, store = references.resolve(data)
    return contact_record(
        customer=customer,
        kind=data["kind"],
        channel=data["channel"],
        occurred_at=data.get("occurred_at"),
        store=store,
        payload=data.get("payload") or {},
    )


def api_contacts_record_bulk(
    *, user: AbstractBaseUser, items: list[dict[str, Any]]
) -> list[Contact | ValidationError]:
    """Record many checked contacts; each valid one is stored, each refused one
    comes back as its ValidationError, in the order given.

    Customers and stores are looked up once for the whole batch and every item is
    checked first; the valid ones are then stored together in a constant number of
    statements, whatever the batch size, and the segment engine is told about the
    batch once it commits.
    """
    references = _ContactReferences.load(user=user, items=items)
    results: list[Contact | ValidationError] = []
    for item in items:
        try:
            customer, store = references.resolve(item)
            results.append(
                contact_build(
                    customer=customer,
                    kind=item["kind"],
                    channel=item["channel"],
                    occurred_at=item.get("occurred_at"),
                    store=store,
                    payload=item.get("payload") or {},
                )
            )
        except ValidationError as exc:
            results.append(exc)
    saved = iter(
        contacts_record_many(
            contacts=[r for r in results if not isinstance(r, ValidationError)]
        )
    )
    return [r if isinstance(r, ValidationError) else next(saved) for r in results]
