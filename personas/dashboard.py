"""The personas' card on the staff home page: customers and revenue per persona.

Registered as a `crm.hooks.dashboard_panels` receiver; figures are cached by
`crm.dashboard`. Revenue is of the last `REVENUE_DAYS` days, like the core's card,
so the persona rows add up to the revenue of known customers.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from crm.charts import chart_spec, colour_for_id, dataset
from crm.dashboard import REVENUE_DAYS, figures_cached
from crm.formats import money_rounded
from crm.models import Customer, Receipt

from .models import Persona


@dataclass
class PersonaRow:
    pk: int | None  # None: the customers matching no persona
    name: str
    customers: int
    revenue: Decimal


def persona_rows(*, now: datetime) -> list[PersonaRow]:
    """Every active persona, then "no persona": customers and recent revenue."""
    key = "persona_assignment__persona_id"
    customers = dict(
        Customer.objects.order_by()
        .values(key)
        .annotate(n=Count("pk"))
        .values_list(key, "n")
    )
    receipt_key = f"customer__{key}"
    revenue = dict(
        Receipt.objects.completed()
        .filter(
            customer__isnull=False,
            purchased_at__gte=now - timedelta(days=REVENUE_DAYS),
            purchased_at__lt=now,
        )
        .order_by()
        .values(receipt_key)
        .annotate(revenue=Sum("total"))
        .values_list(receipt_key, "revenue")
    )
    personas = Persona.objects.filter(status=Persona.Status.ACTIVE).order_by(
        "-priority", "pk"
    )
    rows = [
        PersonaRow(
            pk=persona.pk,
            name=persona.name,
            customers=customers.pop(persona.pk, 0),
            revenue=revenue.pop(persona.pk, None) or Decimal("0"),
        )
        for persona in personas.only("pk", "name")
    ]
    # Assignments of personas no longer active count as none, as on the persona pages.
    rows.append(
        PersonaRow(
            pk=None,
            name=_("No persona"),
            customers=sum(customers.values()),
            revenue=sum(
                (value or Decimal("0") for value in revenue.values()), Decimal("0")
            ),
        )
    )
    return rows


def dashboard_personas_panel(*, request: HttpRequest) -> SafeString | None:
    """`dashboard_panels` receiver: customers and revenue per persona."""
    if not request.user.has_perm("personas.view_persona"):
        return None
    cached = figures_cached("personas", lambda now: persona_rows(now=now))
    rows = cached.figures
    customers_total = sum(row.customers for row in rows)
    colours = [colour_for_id(row.pk) for row in rows]
    chart = chart_spec(
        "dashboard-personas-chart",
        kind="bar",
        title=_("Revenue per persona, last %(days)s days") % {"days": REVENUE_DAYS},
        labels=[row.name for row in rows],
        datasets=[dataset(_("Revenue"), [row.revenue for row in rows], colour=colours)],
        unit=settings.LOYALIST_CURRENCY,
        horizontal=True,
    )
    return render_to_string(
        "admin/personas/dashboard_panel.html",
        {
            "rows": [
                {
                    "row": row,
                    "colour": colour,
                    "revenue": money_rounded(row.revenue),
                    "share": row.customers / customers_total if customers_total else 0,
                }
                for row, colour in zip(rows, colours, strict=True)
            ],
            "computed_at": cached.computed_at,
            "revenue_days": REVENUE_DAYS,
            "chart": chart,
        },
    )
