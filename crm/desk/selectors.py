"""Reads for the desk: who is at the till, which product was scanned, which sales."""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from phonenumber_field.phonenumber import PhoneNumber
from stdnum import luhn

from crm.models import Customer, CustomerStats, LoyaltyCard, Product, Receipt, Store

# What a scanner or a typing clerk adds to a card number: spaces and dashes.
CARD_SEPARATORS = re.compile(r"[\s-]")


@dataclass(frozen=True)
class Identification:
    """The outcome of looking up what the clerk scanned or typed."""

    query: str = ""
    customer: Customer | None = None
    card: LoyaltyCard | None = None
    error: str = ""
    # What was typed but matched nobody: offered to the quick create.
    unknown_card_number: str = ""
    unknown_email: str = ""
    unknown_phone: str = ""

    @property
    def found(self) -> bool:
        return self.card is not None or self.customer is not None

    @property
    def last_visit(self) -> datetime | None:
        if self.customer is None:
            return None
        try:
            return self.customer.stats.last_purchase_at
        except CustomerStats.DoesNotExist:
            return None

    def as_json(self) -> dict:
        """What the desk page shows of the customer, for the lookup endpoint."""
        if not self.found:
            return {
                "found": False,
                "message": self.error,
                "unknown_email": self.unknown_email,
                "unknown_phone": self.unknown_phone,
                "unknown_card_number": self.unknown_card_number,
            }
        customer, card = self.customer, self.card
        last_visit = self.last_visit
        return {
            "found": True,
            "customer": None
            if customer is None
            else {
                "name": customer.full_name or _("(no name)"),
                "email": customer.email or "",
                "phone": str(customer.phone or ""),
            },
            "card": None
            if card is None
            else {
                "number": card.number,
                "tier": card.get_tier_display(),
                "points": card.points,
            },
            "last_visit": (
                timezone.localdate(last_visit).isoformat() if last_visit else None
            ),
        }


def _phone_parse(value: str) -> str | None:
    try:
        phone = PhoneNumber.from_string(
            value, region=settings.PHONENUMBER_DEFAULT_REGION
        )
    except Exception:  # phonenumbers raises its own parse exception
        return None
    return phone.as_e164 if phone.is_valid() else None


def _customer_card(customer: Customer) -> LoyaltyCard | None:
    """The card points are credited to: the customer's newest active card."""
    return (
        customer.loyalty_cards.filter(status=LoyaltyCard.Status.ACTIVE)
        .order_by("-issued_at", "-id")
        .first()
    )


def _customers() -> QuerySet[Customer]:
    return Customer.objects.select_related("stats")


def desk_customer_identify(*, query: str) -> Identification:
    """Find the customer by loyalty card number, email address or phone number."""
    query = query.strip()
    if not query:
        return Identification()

    if "@" in query:
        email = query.lower()
        try:
            validate_email(email)
        except ValidationError:
            return Identification(
                query=query,
                error=_("%(value)s is not an email address.") % {"value": query},
            )
        # Lower(email) is what the unique index is built on, so this is an index
        # lookup even at millions of customers.
        customer = (
            _customers().alias(email_lower=Lower("email")).filter(email_lower=email)
        ).first()
        if customer is None:
            return Identification(
                query=query,
                error=_("No customer with email %(email)s yet; register them below.")
                % {"email": email},
                unknown_email=email,
            )
        return Identification(
            query=query, customer=customer, card=_customer_card(customer)
        )

    digits = CARD_SEPARATORS.sub("", query)
    card_like = digits.isdigit() and 8 <= len(digits) <= 19
    if card_like:
        card = (
            LoyaltyCard.objects.select_related("customer", "customer__stats")
            .filter(number=digits)
            .first()
        )
        if card is not None and card.customer and card.customer.erased_at:
            # The card ties purchases to the person; the erasure blocked it.
            return Identification(
                query=query,
                error=_(
                    "Card %(number)s was closed when its holder's personal data was "
                    "erased; register them again below if they wish."
                )
                % {"number": digits},
            )
        if card is not None:
            return Identification(query=query, customer=card.customer, card=card)

    phone = _phone_parse(query)
    if phone is not None:
        customers = list(_customers().filter(phone=phone)[:2])
        if len(customers) == 1:
            return Identification(
                query=query, customer=customers[0], card=_customer_card(customers[0])
            )
        if len(customers) > 1:
            return Identification(
                query=query,
                error=_(
                    "Several customers share phone number %(phone)s; scan their "
                    "card or type their email address."
                )
                % {"phone": phone},
            )
    if card_like and luhn.is_valid(digits):
        return Identification(
            query=query,
            error=_(
                "Card %(number)s has not been issued yet; register the customer "
                "below to give it to them."
            )
            % {"number": digits},
            unknown_card_number=digits,
        )
    if phone is not None:
        return Identification(
            query=query,
            error=_("No customer with phone number %(phone)s yet; register them below.")
            % {"phone": phone},
            unknown_phone=phone,
        )
    if card_like:
        return Identification(
            query=query,
            error=_(
                "Card number %(number)s has a wrong check digit; re-type or re-scan it."
            )
            % {"number": digits},
        )
    return Identification(
        query=query,
        error=_("Scan a loyalty card, or type an email address or phone number."),
    )


def desk_products_resolve(*, codes: Iterable[str]) -> dict[str, Product]:
    """Map each scanned or typed code (sku or barcode) to its product."""
    codes = {code.strip() for code in codes if code and code.strip()}
    if not codes:
        return {}
    candidates = codes | {code.upper() for code in codes}
    products = list(
        Product.objects.filter(Q(sku__in=candidates) | Q(barcode__in=candidates))
    )
    by_sku = {product.sku: product for product in products}
    by_barcode = {product.barcode: product for product in products if product.barcode}
    resolved = {}
    for code in codes:
        product = by_barcode.get(code) or by_sku.get(code) or by_sku.get(code.upper())
        if product is not None:
            resolved[code] = product
    return resolved


def desk_product_search(*, query: str, limit: int = 10) -> list[Product]:
    """Products for the line entry: exact codes first, then sku and name matches."""
    query = query.strip()
    if not query:
        return []
    exact = list(desk_products_resolve(codes=[query]).values())
    matches = list(
        Product.objects.active()
        .filter(Q(sku__istartswith=query) | Q(name__icontains=query))
        .exclude(pk__in=[product.pk for product in exact])
        .order_by("name", "pk")[: max(limit - len(exact), 0)]
    )
    return exact + matches


def _store_day_start(store: Store) -> datetime:
    today = timezone.localdate(timezone=store.zone)
    return datetime.combine(today, time.min, tzinfo=store.zone)


# Customers a name search may match before the clerk is asked to be more precise.
NAME_SEARCH_LIMIT = 200


def _receipt_numbers(store: Store, query: str) -> set[str]:
    """The receipt numbers a typed number may mean: as typed, or its printed tail."""
    numbers = {query.upper()}
    if query.isdigit() and len(query) <= 7:
        # Numbers the desk hands out look like AMS-0000123 (see receipt_record).
        numbers.add(f"{store.code.upper()}-{int(query):07d}")
    return numbers


def _customers_matching(query: str) -> list[int]:
    """Ids of the customers a search means: by email, phone, card or name."""
    if "@" in query:
        return list(
            Customer.objects.alias(email_lower=Lower("email"))
            .filter(email_lower=query.lower())
            .values_list("pk", flat=True)
        )
    ids = []
    phone = _phone_parse(query)
    if phone is not None:
        ids += Customer.objects.filter(phone=phone).values_list("pk", flat=True)
    words = [word for word in query.split() if word.isalpha()]
    if words:
        # Every word must start the first name or be in the last name: "jo leeuw"
        # finds Joe van Leeuwen.
        names = Q()
        for word in words:
            names &= Q(first_name__istartswith=word) | Q(last_name__icontains=word)
        ids += Customer.objects.filter(names).values_list("pk", flat=True)[
            :NAME_SEARCH_LIMIT
        ]
    return ids


def desk_receipt_list(*, store: Store, query: str = "") -> QuerySet[Receipt]:
    """The store's sales of today, or, when searching, its matching sales of any day.

    The search matches a receipt number (as printed, or just its last digits), a
    loyalty card number, or the customer's email, phone or name. Customers and
    cards are looked up first, so the receipts are found through indexes rather
    than by joining every sale the store ever made.
    """
    receipts = (
        Receipt.objects.filter(store=store)
        .select_related("customer", "loyalty_card")
        .order_by("-purchased_at", "-id")
    )
    query = query.strip()
    if not query:
        return receipts.filter(purchased_at__gte=_store_day_start(store))
    condition = Q(number__in=_receipt_numbers(store, query))
    customer_ids = _customers_matching(query)
    if customer_ids:
        condition |= Q(customer_id__in=customer_ids)
    digits = CARD_SEPARATORS.sub("", query)
    if digits.isdigit() and len(digits) >= 8:
        card_ids = list(
            LoyaltyCard.objects.filter(number=digits).values_list("pk", flat=True)
        )
        if card_ids:
            condition |= Q(loyalty_card_id__in=card_ids)
    return receipts.filter(condition)


def desk_receipt_get(*, store: Store, pk: int) -> Receipt:
    """One of the store's receipts, or 404: another store's sales do not exist here."""
    return get_object_or_404(
        Receipt.objects.filter(store=store).select_related(
            "store", "customer", "loyalty_card", "clerk"
        ),
        pk=pk,
    )
