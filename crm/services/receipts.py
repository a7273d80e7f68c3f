import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import customer_erased_refuse
from crm.models import (
    Contact,
    Customer,
    LoyaltyCard,
    Product,
    Receipt,
    ReceiptLine,
    SalesChannel,
    Store,
)
from crm.webhooks.models import WebhookEvent
from crm.webhooks.services import receipt_created_emit, webhook_subscriptions_for

from .contacts import contact_record
from .loyalty import (
    _card_usable,
    points_adjust,
    points_earn,
    points_for_amount,
    points_redeem,
)
from .receipt_email import receipt_email_enqueue
from .stats import customer_stats_add_sale, customer_stats_refresh

CENT = Decimal("0.01")


@dataclass(frozen=True)
class LineInput:
    """One line as a till or form sends it; `unit_price` defaults to the list price."""

    sku: str
    quantity: int
    unit_price: Decimal | None = None
    discount: Decimal = Decimal("0")


def _money(value, field: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError(
            {
                field: ValidationError(
                    _("%(value)s is not an amount."),
                    code="invalid",
                    params={"value": value},
                )
            }
        ) from None
    if not amount.is_finite():
        raise ValidationError(
            {field: ValidationError(_("Not an amount."), code="invalid")}
        )
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


def _lines_build(lines: list[LineInput]) -> list[ReceiptLine]:
    if not lines:
        raise ValidationError(
            {
                "lines": ValidationError(
                    _("A receipt needs at least one line."), code="empty"
                )
            }
        )
    products = Product.objects.in_bulk({line.sku for line in lines}, field_name="sku")
    errors: dict[str, ValidationError] = {}
    built = []
    for index, line in enumerate(lines):
        prefix = f"lines[{index}]"
        product = products.get(line.sku)
        if product is None:
            errors[f"{prefix}.sku"] = ValidationError(
                _("No product with sku '%(sku)s'."),
                code="unknown_sku",
                params={"sku": line.sku},
            )
            continue
        if not isinstance(line.quantity, int) or line.quantity <= 0:
            errors[f"{prefix}.quantity"] = ValidationError(
                _(
                    "Quantity must be a whole number of at least 1 (got %(value)s); "
                    "record returns by voiding the sale."
                ),
                code="invalid_quantity",
                params={"value": line.quantity},
            )
            continue
        try:
            unit_price = (
                product.price
                if line.unit_price is None
                else _money(line.unit_price, f"{prefix}.unit_price")
            )
            discount = _money(line.discount or 0, f"{prefix}.discount")
        except ValidationError as exc:
            errors.update(exc.error_dict)
            continue
        if unit_price < 0:
            errors[f"{prefix}.unit_price"] = ValidationError(
                _("Unit price cannot be negative."), code="negative_price"
            )
            continue
        gross = unit_price * line.quantity
        if discount < 0 or discount > gross:
            errors[f"{prefix}.discount"] = ValidationError(
                _("Discount must be between 0 and the line amount %(gross)s."),
                code="invalid_discount",
                params={"gross": gross},
            )
            continue
        built.append(
            ReceiptLine(
                product=product,
                quantity=line.quantity,
                unit_price=unit_price,
                discount=discount,
                line_total=gross - discount,
            )
        )
    if errors:
        raise ValidationError(errors)
    return built


NUMBER_DIGITS = 7
# The largest sequence the store's column (a PostgreSQL bigint) holds.
MAX_SEQUENCE = 2**63 - 1


def receipt_number_sequence(store_code: str, number: str) -> int | None:
    """The sequence a number in the store's own format stands for (AMS-0000042:
    42), or None for a number in any other format."""
    prefix = f"{store_code.upper()}-"
    if not number.startswith(prefix):
        return None
    digits = number[len(prefix) :]
    if not (digits.isascii() and digits.isdigit()):
        return None
    sequence = int(digits)
    return sequence if 0 < sequence <= MAX_SEQUENCE else None


def _sequence_advance(store: Store, number: str) -> None:
    """Move the store's sequence past a given number in its own format, so that
    the store never hands the same number out later (which would fail the unique
    constraint on every numbered sale after it)."""
    sequence = receipt_number_sequence(store.code, number)
    if sequence is not None:
        Store.objects.filter(pk=store.pk, receipt_sequence__lt=sequence).update(
            receipt_sequence=sequence
        )


def _receipt_number_assign(receipt: Receipt, store: Store) -> None:
    """Give a saved receipt its store's next number, e.g. AMS-0000042.

    Taking the number locks the store's row until commit, so numbers never
    repeat or skip; callers number last, to keep other sales of the store waiting
    as briefly as possible.
    """
    # Written out for its RETURNING: one statement moves the sequence on and reads
    # the new value under the row lock, where the ORM needs an UPDATE and a SELECT.
    stores = connection.ops.quote_name(Store._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {stores} SET receipt_sequence = receipt_sequence + 1 "  # noqa: S608 - our table name
            "WHERE id = %s RETURNING receipt_sequence",
            [store.pk],
        )
        (sequence,) = cursor.fetchone()
    receipt.number = f"{store.code.upper()}-{sequence:0{NUMBER_DIGITS}d}"
    Receipt.objects.filter(pk=receipt.pk).update(number=receipt.number)


def _receipt_insert(
    receipt: Receipt,
    lines: list[ReceiptLine],
    *,
    store: Store,
    number: str | None,
    idempotency_key: str | None,
) -> Receipt | None:
    """Insert the receipt, then its lines; or return the receipt that won a race
    for the same idempotency key."""
    try:
        # Only a given number or idempotency key can collide; a savepoint lets
        # the collision be answered instead of failing the caller's transaction.
        with transaction.atomic(savepoint=bool(number or idempotency_key)):
            receipt.save()
    except IntegrityError:
        if idempotency_key:
            # A concurrent call with the same key won; hand back its receipt.
            winner = Receipt.objects.filter(idempotency_key=idempotency_key).first()
            if winner is not None:
                return winner
        if number and Receipt.objects.filter(store=store, number=number).exists():
            raise ValidationError(
                {
                    "number": ValidationError(
                        _("Receipt %(number)s already exists in this store."),
                        code="duplicate_number",
                        params={"number": number},
                    )
                }
            ) from None
        raise
    for line in lines:
        line.receipt = receipt
    ReceiptLine.objects.bulk_create(lines)
    return None


def _card_resolve(
    customer: Customer | None, card: LoyaltyCard | None
) -> tuple[Customer | None, LoyaltyCard | None]:
    if card is None:
        return customer, None
    _card_usable(card)
    if customer is None:
        return card.customer, card
    if card.customer_id not in (None, customer.pk):
        raise ValidationError(
            {
                "loyalty_card": ValidationError(
                    _("Card %(number)s belongs to another customer."),
                    code="card_mismatch",
                    params={"number": card.number},
                )
            }
        )
    return customer, card


def _receipt_record(
    *,
    store: Store,
    lines: list[LineInput],
    payment_method: str,
    customer: Customer | None = None,
    loyalty_card: LoyaltyCard | None = None,
    clerk: AbstractBaseUser | None = None,
    channel: str = SalesChannel.STORE,
    purchased_at: datetime | None = None,
    number: str | None = None,
    expected_total: Decimal | None = None,
    points_to_redeem: int = 0,
    idempotency_key: str | None = None,
    send_email: bool = False,
) -> Receipt:
    """Record a sale: receipt, lines, points, the purchase contact and the stats.

    Idempotent by `idempotency_key`: a repeated call returns the first receipt.
    With `send_email`, a customer with an email address is emailed the receipt
    once the sale commits.
    """
    if idempotency_key:
        existing = Receipt.objects.filter(idempotency_key=idempotency_key).first()
        if existing is not None:
            return existing
    if channel not in SalesChannel.values:
        raise ValidationError(
            {
                "channel": ValidationError(
                    _("Channel must be one of %(choices)s."),
                    code="invalid_choice",
                    params={"choices": ", ".join(SalesChannel.values)},
                )
            }
        )
    if payment_method not in Receipt.PaymentMethod.values:
        raise ValidationError(
            {
                "payment_method": ValidationError(
                    _("Payment method must be one of %(choices)s."),
                    code="invalid_choice",
                    params={"choices": ", ".join(Receipt.PaymentMethod.values)},
                )
            }
        )
    purchased_at = purchased_at or timezone.now()
    if timezone.is_naive(purchased_at):
        raise ValidationError(
            {
                "purchased_at": ValidationError(
                    _("Give the purchase time with its UTC offset."),
                    code="naive_datetime",
                )
            }
        )
    if purchased_at > timezone.now() + timezone.timedelta(minutes=5):
        raise ValidationError(
            {
                "purchased_at": ValidationError(
                    _("The purchase time lies in the future."), code="future"
                )
            }
        )
    customer, loyalty_card = _card_resolve(customer, loyalty_card)
    customer_erased_refuse(customer)
    built = _lines_build(lines)
    total = sum((line.line_total for line in built), Decimal("0.00"))
    if expected_total is not None and _money(expected_total, "total") != total:
        raise ValidationError(
            {
                "total": ValidationError(
                    _(
                        "The total %(given)s does not match the lines, which add up "
                        "to %(total)s."
                    ),
                    code="total_mismatch",
                    params={"given": expected_total, "total": total},
                )
            }
        )
    if points_to_redeem < 0:
        raise ValidationError(
            {
                "points_redeemed": ValidationError(
                    _("Redeemed points cannot be negative."), code="min"
                )
            }
        )
    if points_to_redeem and loyalty_card is None:
        raise ValidationError(
            {
                "points_redeemed": ValidationError(
                    _("Scan a loyalty card to redeem points."), code="card_required"
                )
            }
        )
    point_value = Decimal(settings.LOYALIST_POINT_VALUE)
    redeemed_value = (point_value * points_to_redeem).quantize(CENT)
    if redeemed_value > total:
        raise ValidationError(
            {
                "points_redeemed": ValidationError(
                    _(
                        "%(points)d points are worth %(value)s, more than the "
                        "total %(total)s."
                    ),
                    code="redeem_exceeds_total",
                    params={
                        "points": points_to_redeem,
                        "value": redeemed_value,
                        "total": total,
                    },
                )
            }
        )

    receipt = Receipt(
        # Numbered last (below): the store row stays locked from numbering until
        # commit, so the rest of the sale must not run under that lock.
        number=number or f"pending-{uuid.uuid4().hex}",
        store=store,
        clerk=clerk,
        customer=customer,
        loyalty_card=loyalty_card,
        channel=channel,
        purchased_at=purchased_at,
        total=total,
        currency=settings.LOYALIST_CURRENCY,
        payment_method=payment_method,
        points_redeemed=points_to_redeem,
        redeemed_value=redeemed_value,
        idempotency_key=idempotency_key or None,
    )
    if send_email and customer is not None and customer.email:
        receipt.email_status = Receipt.EmailStatus.PENDING
    if loyalty_card is not None:
        receipt.points_earned = points_for_amount(total - redeemed_value)
    if winner := _receipt_insert(
        receipt, built, store=store, number=number, idempotency_key=idempotency_key
    ):
        return winner
    _stock_move(built, sign=-1)

    if loyalty_card is not None:
        if customer is not None and loyalty_card.customer_id is None:
            # Linked only if still anonymous, in one statement: two tills scanning
            # the same new card for two customers cannot both win.
            linked = LoyaltyCard.objects.filter(
                pk=loyalty_card.pk, customer__isnull=True
            ).update(customer=customer)
            if not linked:
                raise ValidationError(
                    {
                        "loyalty_card": ValidationError(
                            _(
                                "Card %(number)s was just registered to another "
                                "customer."
                            ),
                            code="card_taken",
                            params={"number": loyalty_card.number},
                        )
                    }
                )
            loyalty_card.customer = customer
        if points_to_redeem:
            # The purchase contact below announces the customer once for all.
            points_redeem(
                card=loyalty_card,
                points=points_to_redeem,
                receipt=receipt,
                announce=customer is None,
            )
        if receipt.points_earned:
            points_earn(
                card=loyalty_card,
                points=receipt.points_earned,
                receipt=receipt,
                announce=customer is None,
            )
    if customer is not None:
        contact_record(
            customer=customer,
            kind=Contact.Kind.PURCHASE,
            channel=channel,
            occurred_at=purchased_at,
            store=store,
            receipt=receipt,
            last_contact_move=False,  # the statistics below move it
        )
        customer_stats_add_sale(
            customer_id=customer.pk,
            channel=channel,
            purchased_at=purchased_at,
            total=total,
            lines=[
                (line.product.category_id, line.quantity, line.line_total)
                for line in built
            ],
        )
    # Read before numbering, so that only the number's own statement runs while
    # the store's row is locked.
    subscriptions = webhook_subscriptions_for(WebhookEvent.RECEIPT_CREATED)
    if not number:
        _receipt_number_assign(receipt, store)
    else:
        _sequence_advance(store, number)
    # The lines with their products, so callers answer without reading them back.
    receipt.recorded_lines = built
    if receipt.email_status == Receipt.EmailStatus.PENDING:
        receipt_email_enqueue(receipt_id=receipt.pk)
    receipt_created_emit(receipt=receipt, subscriptions=subscriptions)
    return receipt


# Its own transaction, or a savepoint inside the caller's: a refused sale leaves the
# caller's transaction usable (the desk and the tests carry on after one).
receipt_record = transaction.atomic(_receipt_record)
# For a caller whose transaction ends with any error anyway (an API request): the
# savepoint's two round trips are saved.
receipt_record_in_transaction = transaction.atomic(savepoint=False)(_receipt_record)


def _stock_move(lines: list[ReceiptLine], *, sign: int) -> None:
    """Move the lines' products' stock by `sign` times their quantity.

    One UPDATE for every product, a CASE on the product's id, instead of one per
    product. The subquery locks the rows in key order first, so two tills selling
    the same products never deadlock (SQLite has one writer at a time and ignores
    the lock).
    """
    quantities = Counter()
    for line in lines:
        quantities[line.product_id] += line.quantity
    if not quantities:
        return
    locked = (
        Product.objects.filter(pk__in=quantities)
        .order_by("pk")
        .select_for_update()
        .values("pk")
    )
    Product.objects.filter(pk__in=locked).update(
        stock_level=F("stock_level")
        + Case(
            *(
                When(pk=pk, then=Value(sign * quantity))
                for pk, quantity in sorted(quantities.items())
            ),
            default=Value(0),
        )
    )


@transaction.atomic
def receipt_void(
    *, receipt: Receipt, reason: str, by: AbstractBaseUser | None = None
) -> Receipt:
    """Void a sale, reversing its points, stock and statistics; voiding twice is
    harmless."""
    if not reason.strip():
        raise ValidationError(
            {
                "reason": ValidationError(
                    _("Say why the sale is voided."), code="reason_required"
                )
            }
        )
    receipt = Receipt.objects.select_for_update().get(pk=receipt.pk)
    if receipt.status == Receipt.Status.VOIDED:
        return receipt
    if receipt.loyalty_card_id is not None:
        card = receipt.loyalty_card
        net = receipt.points_earned - receipt.points_redeemed
        if net > 0 and card.points < net:
            raise ValidationError(
                {
                    "receipt": ValidationError(
                        _(
                            "The %(net)d points from this sale were already spent "
                            "(balance %(balance)d); adjust the card by hand first."
                        ),
                        code="points_spent",
                        params={"net": net, "balance": card.points},
                    )
                }
            )
        if net:
            points_adjust(
                card=card,
                points=-net,
                receipt=receipt,
                note=f"Void of {receipt.number}: {reason.strip()}"[:200],
            )
    receipt.status = Receipt.Status.VOIDED
    receipt.voided_at = timezone.now()
    receipt.void_reason = reason.strip()[:200]
    receipt.save(update_fields=["status", "voided_at", "void_reason"])
    _stock_move(list(receipt.lines.all()), sign=1)
    if receipt.customer_id is not None:
        if receipt.customer.erased_at is None:
            contact_record(
                customer=receipt.customer,
                kind=Contact.Kind.PURCHASE_VOIDED,
                channel=receipt.channel,
                store=receipt.store,
                receipt=receipt,
                payload={"reason": receipt.void_reason, "by": getattr(by, "pk", None)},
            )
        # An erased customer's sale is still voided (goods come back, the books
        # must balance); only no contact is recorded about them.
        customer_stats_refresh(customer_ids=[receipt.customer_id])
    return receipt
