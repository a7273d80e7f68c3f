"""Persona figures as the pages print them: money with its currency, one minus sign."""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from crm.charts import colour_for_id
from crm.formats import MINUS, money, money_rounded

from ..selectors import FIGURES_DAYS, PersonaFacts
from ..services.figures import campaign_cost_per_customer, service_cost_per_effort


def signed_number(value: float | Decimal | None, decimals: int) -> str:
    """A number with the typographic minus sign, "-" when unknown."""
    if value is None:
        return "-"
    text = number_format(abs(Decimal(str(value))), decimals, force_grouping=True)
    return f"{MINUS if value < 0 and text.strip('0,. ') else ''}{text}"


def roi_ratio_text(facts: PersonaFacts) -> str:
    """The ratio as "returns 3.2x its cost"; "-" without a cost to compare."""
    if facts.roi_ratio is None:
        return "-"
    return _("returns %(ratio)sx its cost") % {
        "ratio": signed_number(facts.roi_ratio, 1)
    }


def facts_row(facts: PersonaFacts) -> dict[str, Any]:
    """The printed figures of one persona (or of the customers matching none)."""
    return {
        "facts": facts,
        "colour": colour_for_id(facts.persona.pk if facts.persona else None),
        "customers": number_format(facts.customers, 0, force_grouping=True),
        "share": f"{round(facts.share * 100)}%",
        "revenue": money_rounded(facts.revenue),
        "margin": money_rounded(facts.margin),
        "aov": money_rounded(facts.aov),
        "orders_per_month": signed_number(facts.orders_per_month, 2),
        "cost": money_rounded(-facts.cost) if facts.cost else money_rounded(0),
        "roi": money_rounded(facts.roi),
        "roi_per_customer": money_rounded(facts.roi_per_customer),
        "roi_ratio": roi_ratio_text(facts),
        "roi_times": "-"
        if facts.roi_ratio is None
        else f"{signed_number(facts.roi_ratio, 1)}x",
    }


def roi_assumptions() -> dict[str, str]:
    """The unit costs behind every ROI estimate, printed with the currency."""
    return {
        "service_cost_per_effort": money(service_cost_per_effort()),
        "campaign_cost_per_customer": money(campaign_cost_per_customer()),
        "days": str(FIGURES_DAYS),
        "currency": settings.LOYALIST_CURRENCY,
    }
