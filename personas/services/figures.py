"""The matched customers' real figures per persona, computed set-based.

Every figure is one GROUP BY over the assignments joined with customers, their
statistics, receipts or receipt lines; nothing is computed per customer in Python.
Money figures cover the last `FIGURES_DAYS` days.

Return on investment is an estimate per year:
    margin - service cost - campaign cost, where
    service cost  = customers x average service effort (1-10) x SERVICE_COST_PER_EFFORT
    campaign cost = customers x CAMPAIGN_COST_PER_CUSTOMER.
Both unit costs are settings (LOYALIST_PERSONA_SERVICE_COST_PER_EFFORT,
LOYALIST_PERSONA_CAMPAIGN_COST_PER_CUSTOMER) with the defaults below.
"""

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import combinations

from django.conf import settings
from django.db import transaction
from django.db.models import Avg, Count, DecimalField, F, Q, Sum
from django.db.models.functions import ExtractYear, Lower
from django.utils import timezone

from crm.models import Contact, Customer, Receipt, ReceiptLine

from ..models import Persona, PersonaFigures

FIGURES_DAYS = 365
# A year of service for a customer of effort 1; effort 10 costs ten times as much.
SERVICE_COST_PER_EFFORT = Decimal("4.00")
# A year of newsletters, mailings and ads per customer.
CAMPAIGN_COST_PER_CUSTOMER = Decimal("6.00")
AGE_BANDS = ((0, 24, "<25"), (25, 34, "25-34"), (35, 44, "35-44"), (45, 54, "45-54"))
AGE_BANDS += ((55, 64, "55-64"), (65, 200, "65+"))
CITIES_KEPT = 5


def service_cost_per_effort() -> Decimal:
    return Decimal(
        str(
            getattr(
                settings,
                "LOYALIST_PERSONA_SERVICE_COST_PER_EFFORT",
                SERVICE_COST_PER_EFFORT,
            )
        )
    )


def campaign_cost_per_customer() -> Decimal:
    return Decimal(
        str(
            getattr(
                settings,
                "LOYALIST_PERSONA_CAMPAIGN_COST_PER_CUSTOMER",
                CAMPAIGN_COST_PER_CUSTOMER,
            )
        )
    )


def _age_figures(years: dict[int, int], this_year: int) -> tuple[dict, int | None]:
    """Age bands and the median age from a histogram of birth years."""
    bands = {label: 0 for _low, _high, label in AGE_BANDS}
    ages = sorted((this_year - year, n) for year, n in years.items())
    for age, n in ages:
        for low, high, label in AGE_BANDS:
            if low <= age <= high:
                bands[label] += n
    total = sum(n for _age, n in ages)
    median = None
    seen = 0
    for age, n in ages:
        seen += n
        if seen * 2 >= total:
            median = age
            break
    return bands, median


@transaction.atomic
def persona_figures_refresh(*, now: datetime | None = None) -> list[PersonaFigures]:
    """Recompute the figures of every active or draft persona."""
    from segments.compiler import context_build, rule_condition

    now = now or timezone.now()
    since = now - timedelta(days=FIGURES_DAYS)
    personas = list(
        Persona.objects.exclude(status=Persona.Status.RETIRED).order_by("pk")
    )
    if not personas:
        PersonaFigures.objects.all().delete()
        return []
    key = "persona_assignment__persona_id"
    base = Customer.objects.count()

    people = {
        row[key]: row
        for row in Customer.objects.filter(persona_assignment__isnull=False)
        .order_by()
        .values(key)
        .annotate(n=Count("pk"), effort=Avg("service_effort"))
    }
    genders: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        Customer.objects.filter(persona_assignment__isnull=False)
        .order_by()
        .values(key, "gender")
        .annotate(n=Count("pk"))
    ):
        genders[row[key]][row["gender"] or "?"] = row["n"]
    years: dict[int, dict[int, int]] = defaultdict(dict)
    for row in (
        Customer.objects.filter(
            persona_assignment__isnull=False, birth_date__isnull=False
        )
        .order_by()
        .values(key, year=ExtractYear("birth_date"))
        .annotate(n=Count("pk"))
    ):
        years[row[key]][row["year"]] = row["n"]
    cities: dict[int, list] = defaultdict(list)
    for row in (
        Customer.objects.filter(persona_assignment__isnull=False)
        .exclude(city="")
        .order_by()
        .values(key, town=Lower("city"))
        .annotate(n=Count("pk"))
        .order_by(key, "-n", "town")
    ):
        if len(cities[row[key]]) < CITIES_KEPT:
            cities[row[key]].append([row["town"].title(), row["n"]])

    receipt_key = "customer__persona_assignment__persona_id"
    sales = {
        row[receipt_key]: row
        for row in Receipt.objects.filter(
            status=Receipt.Status.COMPLETED,
            purchased_at__gte=since,
            customer__persona_assignment__isnull=False,
        )
        .order_by()
        .values(receipt_key)
        .annotate(
            orders=Count("pk"),
            buyers=Count("customer_id", distinct=True),
            revenue=Sum("total"),
            store=Count("pk", filter=Q(channel="store")),
            online=Count("pk", filter=Q(channel="online")),
            phone=Count("pk", filter=Q(channel="phone")),
        )
    }
    line_key = "receipt__customer__persona_assignment__persona_id"
    money = DecimalField(max_digits=16, decimal_places=2)
    margins = dict(
        ReceiptLine.objects.filter(
            receipt__status=Receipt.Status.COMPLETED,
            receipt__purchased_at__gte=since,
            receipt__customer__persona_assignment__isnull=False,
        )
        .order_by()
        .values(line_key)
        .annotate(
            margin=Sum(
                F("line_total") - F("quantity") * F("product__cost"),
                output_field=money,
            )
        )
        .values_list(line_key, "margin")
    )
    contact_key = "customer__persona_assignment__persona_id"
    openers = dict(
        Contact.objects.filter(
            kind=Contact.Kind.EMAIL_OPEN,
            occurred_at__gte=now - timedelta(days=30),
            customer__persona_assignment__isnull=False,
        )
        .order_by()
        .values(contact_key)
        .annotate(n=Count("customer_id", distinct=True))
        .values_list(contact_key, "n")
    )

    # Rule matches before priority, and shared matches of each pair of personas,
    # in one pass over the customers.
    ctx = context_build(now=now)
    conditions = {p.pk: rule_condition(p.rules, ctx) for p in personas}
    aggregates = {f"m{pk}": Count("pk", filter=c) for pk, c in conditions.items()}
    active = [p.pk for p in personas if p.status == Persona.Status.ACTIVE]
    for a, b in combinations(active, 2):
        aggregates[f"o{a}_{b}"] = Count("pk", filter=conditions[a] & conditions[b])
    matches = Customer.objects.aggregate(**aggregates)
    overlaps: dict[int, dict[str, int]] = defaultdict(dict)
    for a, b in combinations(active, 2):
        shared = matches[f"o{a}_{b}"]
        overlaps[a][str(b)] = shared
        overlaps[b][str(a)] = shared

    rows = []
    for persona in personas:
        pk = persona.pk
        sale = sales.get(pk, {})
        bands, median = _age_figures(years.get(pk, {}), now.year)
        effort = people.get(pk, {}).get("effort")
        rows.append(
            PersonaFigures(
                persona=persona,
                computed_at=now,
                base_customers=base,
                customers=people.get(pk, {}).get("n", 0),
                rule_matches=matches[f"m{pk}"],
                buyers=sale.get("buyers", 0),
                orders=sale.get("orders", 0),
                revenue=sale.get("revenue") or Decimal("0"),
                margin=margins.get(pk) or Decimal("0"),
                service_effort=(
                    Decimal(str(round(effort, 2))) if effort is not None else None
                ),
                email_openers=openers.get(pk, 0),
                channels={
                    channel: sale.get(channel, 0)
                    for channel in ("store", "online", "phone")
                },
                ages=bands,
                median_age=median,
                cities=cities.get(pk, []),
                genders=genders.get(pk, {}),
                overlaps=overlaps.get(pk, {}),
            )
        )
    PersonaFigures.objects.exclude(persona__in=personas).delete()
    PersonaFigures.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["persona"],
        update_fields=[
            f.name for f in PersonaFigures._meta.concrete_fields if f.name != "persona"
        ],
    )
    return rows
