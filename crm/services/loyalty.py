import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _
from stdnum import luhn

from crm.errors import customer_erased_refuse, field_error
from crm.models import Customer, LoyaltyCard, LoyaltyTransaction, Receipt, Store
from crm.services.contacts import ContactRef, contact_announce

CARD_PREFIX = "2962"
CARD_LENGTH = 13


def _card_number_generate() -> str:
    body = CARD_PREFIX + "".join(
        secrets.choice("0123456789") for _ in range(CARD_LENGTH - len(CARD_PREFIX) - 1)
    )
    return body + luhn.calc_check_digit(body)


@transaction.atomic
def loyalty_card_issue(
    *,
    number: str | None = None,
    customer: Customer | None = None,
    store: Store | None = None,
    tier: str = LoyaltyCard.Tier.BASIC,
) -> LoyaltyCard:
    """Issue a card, with a generated number unless a pre-printed one is given."""
    customer_erased_refuse(customer)
    for _attempt in range(5):
        card = LoyaltyCard(
            number=(number or _card_number_generate()).strip(),
            customer=customer,
            issuing_store=store,
            tier=tier,
        )
        card.full_clean(exclude=["customer", "issuing_store"], validate_unique=False)
        if LoyaltyCard.objects.filter(number=card.number).exists():
            if number:
                raise ValidationError(
                    {
                        "number": ValidationError(
                            _("Card %(number)s has already been issued."),
                            code="card_exists",
                            params={"number": card.number},
                        )
                    }
                )
            continue
        try:
            with transaction.atomic():
                card.save()
        except IntegrityError:
            if number:
                # Issued by another till at the same moment.
                raise field_error(
                    "number",
                    _("Card %(number)s has already been issued."),
                    "card_exists",
                    number=card.number,
                ) from None
            continue
        _announce(card)
        return card
    raise RuntimeError("Could not generate a free loyalty card number.")


def _announce(card: LoyaltyCard) -> None:
    # Cards, tiers and points are part of what segments look at.
    if card.customer_id is not None:
        contact_announce(contacts=[ContactRef(card.customer_id, None)])


@transaction.atomic
def loyalty_card_link(*, card: LoyaltyCard, customer: Customer) -> LoyaltyCard:
    """Register an anonymous card to a customer."""
    customer_erased_refuse(customer)
    card = LoyaltyCard.objects.select_for_update().get(pk=card.pk)
    if card.customer_id == customer.pk:
        return card
    if card.customer_id is not None:
        raise ValidationError(
            {
                "loyalty_card": ValidationError(
                    _("Card %(number)s is registered to another customer."),
                    code="card_taken",
                    params={"number": card.number},
                )
            }
        )
    card.customer = customer
    card.save(update_fields=["customer"])
    _announce(card)
    return card


def _points_apply(
    *,
    card: LoyaltyCard,
    kind: str,
    points: int,
    receipt: Receipt | None,
    note: str = "",
    announce: bool = True,
) -> LoyaltyTransaction:
    entry = LoyaltyTransaction.objects.create(
        card=card, kind=kind, points=points, receipt=receipt, note=note
    )
    # The CHECK constraint on the balance is the last word when two tills race.
    try:
        with transaction.atomic():
            LoyaltyCard.objects.filter(pk=card.pk).update(points=F("points") + points)
    except IntegrityError:
        raise _insufficient_points(card) from None
    card.refresh_from_db(fields=["points"])
    if announce:
        _announce(card)
    return entry


def _insufficient_points(
    card: LoyaltyCard, wanted: int | None = None
) -> ValidationError:
    card.refresh_from_db(fields=["points"])
    return ValidationError(
        {
            "points_redeemed": ValidationError(
                _(
                    "Card %(number)s has %(balance)d points; %(wanted)s cannot be "
                    "redeemed."
                ),
                code="insufficient_points",
                params={
                    "number": card.number,
                    "balance": card.points,
                    "wanted": wanted if wanted is not None else _("that many"),
                },
            )
        }
    )


def _card_usable(card: LoyaltyCard) -> None:
    if card.status != LoyaltyCard.Status.ACTIVE:
        raise ValidationError(
            {
                "loyalty_card": ValidationError(
                    _("Card %(number)s is %(status)s and cannot be used."),
                    code="card_not_active",
                    params={"number": card.number, "status": card.get_status_display()},
                )
            }
        )


def points_for_amount(amount) -> int:
    """Points earned for paying `amount` (whole points, rounded down)."""
    return max(int(amount * settings.LOYALIST_POINTS_PER_CURRENCY_UNIT), 0)


@transaction.atomic
def points_earn(
    *,
    card: LoyaltyCard,
    points: int,
    receipt: Receipt | None = None,
    note: str = "",
    announce: bool = True,
) -> LoyaltyTransaction:
    if points <= 0:
        raise ValidationError(
            {
                "points": ValidationError(
                    _("Earned points must be positive."), code="min"
                )
            }
        )
    _card_usable(card)
    return _points_apply(
        card=card,
        kind=LoyaltyTransaction.Kind.EARNED,
        points=points,
        receipt=receipt,
        note=note,
        announce=announce,
    )


@transaction.atomic
def points_redeem(
    *,
    card: LoyaltyCard,
    points: int,
    receipt: Receipt | None = None,
    note: str = "",
    announce: bool = True,
) -> LoyaltyTransaction:
    """Spend points; refused with a clear message when the balance is too low."""
    if points <= 0:
        raise ValidationError(
            {
                "points_redeemed": ValidationError(
                    _("Redeemed points must be positive."), code="min"
                )
            }
        )
    _card_usable(card)
    # Lock the card so the balance check and the spend see the same balance.
    locked = LoyaltyCard.objects.select_for_update().get(pk=card.pk)
    if locked.points < points:
        raise _insufficient_points(card, wanted=points)
    entry = _points_apply(
        card=card,
        kind=LoyaltyTransaction.Kind.REDEEMED,
        points=-points,
        receipt=receipt,
        note=note,
        announce=announce,
    )
    return entry


@transaction.atomic
def points_adjust(
    *, card: LoyaltyCard, points: int, note: str, receipt: Receipt | None = None
) -> LoyaltyTransaction:
    """Correct a balance by hand or reverse a voided sale; never below zero."""
    if receipt is None:
        customer_erased_refuse(card.customer)
    if points == 0:
        raise ValidationError(
            {"points": ValidationError(_("An adjustment cannot be zero."), code="zero")}
        )
    return _points_apply(
        card=card,
        kind=LoyaltyTransaction.Kind.ADJUSTED,
        points=points,
        receipt=receipt,
        note=note,
    )


@transaction.atomic
def loyalty_card_status_set(*, card: LoyaltyCard, status: str) -> LoyaltyCard:
    """Block a card, report it lost, or make it usable again.

    A blocked or lost card is refused at the till and by the API; its points stay
    on its ledger (issue a new card and move them over with an adjustment). A
    card whose holder's personal data was erased stays closed.
    """
    if status not in LoyaltyCard.Status.values:
        raise field_error(
            "status",
            _("Status must be one of %(choices)s."),
            "invalid_choice",
            choices=", ".join(LoyaltyCard.Status.values),
        )
    card = (
        LoyaltyCard.objects.select_for_update(of=("self",))
        .select_related("customer")
        .get(pk=card.pk)
    )
    if status == LoyaltyCard.Status.ACTIVE:
        customer_erased_refuse(card.customer, field="loyalty_card")
    if card.status != status:
        card.status = status
        card.save(update_fields=["status"])
        _announce(card)
    return card


@transaction.atomic
def loyalty_card_replace(
    *, card: LoyaltyCard, number: str | None = None, store: Store | None = None
) -> LoyaltyCard:
    """Replace a lost or damaged card: a new card for the same holder and tier,
    with the old card's points moved over on both ledgers; the old card is
    reported lost. `number` takes a pre-printed card; `store` is where it is
    handed out (the old card's store by default)."""
    card = (
        LoyaltyCard.objects.select_for_update(of=("self",))
        .select_related("customer", "issuing_store")
        .get(pk=card.pk)
    )
    customer_erased_refuse(card.customer, field="loyalty_card")
    new = loyalty_card_issue(
        number=number,
        customer=card.customer,
        store=store or card.issuing_store,
        tier=card.tier,
    )
    if card.points:
        moved = card.points
        _points_apply(
            card=card,
            kind=LoyaltyTransaction.Kind.ADJUSTED,
            points=-moved,
            receipt=None,
            note=f"Moved to card {new.number}",
            announce=False,
        )
        _points_apply(
            card=new,
            kind=LoyaltyTransaction.Kind.ADJUSTED,
            points=moved,
            receipt=None,
            note=f"Moved from card {card.number}",
        )
    if card.status == LoyaltyCard.Status.ACTIVE:
        card.status = LoyaltyCard.Status.LOST
        card.save(update_fields=["status"])
    return new
