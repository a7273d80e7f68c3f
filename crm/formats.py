"""How amounts and changes read on every page: one module, so one rounding and one
minus sign everywhere (tables, charts, explanations, cards)."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.utils.formats import number_format

MINUS = "\u2212"


def money(amount: Decimal | None, currency: str | None = None) -> str:
    """An amount with its currency code, grouped the way the active language does."""
    if amount is None:
        return "-"
    # number_format cuts decimals off instead of rounding: round to cents first.
    cents = Decimal(amount).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    formatted = number_format(cents, decimal_pos=2, force_grouping=True)
    return f"{currency or settings.LOYALIST_CURRENCY} {formatted}"


def whole_units(amount: Decimal) -> Decimal:
    """An amount rounded to whole currency units, halves away from zero (charts
    use it too, so a bar and the table next to it agree)."""
    return Decimal(amount).quantize(Decimal("1"), rounding=ROUND_HALF_UP)


def money_rounded(amount: Decimal | None) -> str:
    """An amount in whole currency units with its currency code."""
    if amount is None:
        return "-"
    rounded = whole_units(amount)
    # number_format cuts decimals off instead of rounding: round first.
    text = number_format(abs(rounded), 0, force_grouping=True)
    sign = MINUS if rounded < 0 else ""
    return f"{sign}{settings.LOYALIST_CURRENCY} {text}"


def change_text(change: float | None) -> str:
    """A signed percentage (a plus or a minus sign), or "-" without a base."""
    if change is None:
        return "-"
    text = number_format(abs(change), 1)
    if text.strip("0,. ") == "":
        return f"{text} %"
    return f"{'+' if change > 0 else MINUS}{text} %"
