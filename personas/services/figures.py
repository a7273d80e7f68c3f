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
from django.db.models import Avg, Count, DecimalField, F, Q, QuerySet, Sum
from django.db.models.functions import ExtractYear, Lower
from django.utils import timezone

from crm.models import Contact, Customer, Receipt, ReceiptLine
from segments.compiler import context_build, rule_condition

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


def _grouped(queryset, key: str | None, *fields: str, **aggregates) -> list[dict]:
    """Rows of `aggregates` per value of `key` (and `fields`); without a key one
    customer set, its rows keyed by None."""
    if key is None and not fields:
        return [{None: None, **queryset.aggregate(**aggregates)}]
    names = [key, *fields] if key else list(fields)
    rows = queryset.order_by().values(*names).annotate(**aggregates)
    return [{None: None, **row} for row in rows]


def _customer_set_figures(
    customers: QuerySet[Customer], key: str | None, *, since: datetime, now: datetime
) -> dict[int | None, dict]:
    """The figures of customers per persona (`key` is the customers' persona id
    path, e.g. persona_assignment__persona_id) or, with no key, of `customers` as a
    whole under None. One GROUP BY per figure, both ways."""
    figures: dict[int | None, dict] = defaultdict(
        lambda: {"genders": {}, "years": {}, "cities": []}
    )
    for row in _grouped(customers, key, n=Count("pk"), effort=Avg("service_effort")):
        figures[row[key]].update(customers=row["n"], effort=row["effort"])
    for row in _grouped(customers, key, "gender", n=Count("pk")):
        figures[row[key]]["genders"][row["gender"] or "?"] = row["n"]
    born = customers.filter(birth_date__isnull=False).annotate(
        year=ExtractYear("birth_date")
    )
    for row in _grouped(born, key, "year", n=Count("pk")):
        figures[row[key]]["years"][row["year"]] = row["n"]
    towns = customers.exclude(city="").annotate(town=Lower("city"))
    for row in sorted(
        _grouped(towns, key, "town", n=Count("pk")),
        key=lambda r: (-r["n"], r["town"]),
    ):
        if len(figures[row[key]]["cities"]) < CITIES_KEPT:
            figures[row[key]]["cities"].append([row["town"].title(), row["n"]])

    prefix = f"customer__{key}" if key else None
    receipts = Receipt.objects.filter(
        status=Receipt.Status.COMPLETED,
        purchased_at__gte=since,
        customer__in=customers.values("pk"),
    )
    for row in _grouped(
        receipts,
        prefix,
        orders=Count("pk"),
        buyers=Count("customer_id", distinct=True),
        revenue=Sum("total"),
        store=Count("pk", filter=Q(channel="store")),
        online=Count("pk", filter=Q(channel="online")),
        phone=Count("pk", filter=Q(channel="phone")),
    ):
        figures[row[prefix]]["sales"] = row
    lines = ReceiptLine.objects.filter(
        receipt__status=Receipt.Status.COMPLETED,
        receipt__purchased_at__gte=since,
        receipt__customer__in=customers.values("pk"),
    )
    line_key = f"receipt__customer__{key}" if key else None
    money = DecimalField(max_digits=16, decimal_places=2)
    for row in _grouped(
        lines,
        line_key,
        margin=Sum(
            F("line_total") - F("quantity") * F("product__cost"), output_field=money
        ),
    ):
        figures[row[line_key]]["margin"] = row["margin"]
    opens = Contact.objects.filter(
        kind=Contact.Kind.EMAIL_OPEN,
        occurred_at__gte=now - timedelta(days=30),
        customer__in=customers.values("pk"),
    )
    for row in _grouped(opens, prefix, n=Count("customer_id", distinct=True)):
        figures[row[prefix]]["openers"] = row["n"]
    return figures


def _figures_row(
    persona: Persona, found: dict, *, base: int, matches: int, overlaps: dict, now
) -> PersonaFigures:
    sale = found.get("sales", {})
    bands, median = _age_figures(found["years"], now.year)
    effort = found.get("effort")
    return PersonaFigures(
        persona=persona,
        computed_at=now,
        base_customers=base,
        customers=found.get("customers", 0),
        rule_matches=matches,
        buyers=sale.get("buyers", 0),
        orders=sale.get("orders", 0),
        revenue=sale.get("revenue") or Decimal("0"),
        margin=found.get("margin") or Decimal("0"),
        service_effort=(Decimal(str(round(effort, 2))) if effort is not None else None),
        email_openers=found.get("openers", 0),
        channels={
            channel: sale.get(channel, 0) for channel in ("store", "online", "phone")
        },
        ages=bands,
        median_age=median,
        cities=found["cities"],
        genders=found["genders"],
        overlaps=overlaps,
    )


@transaction.atomic
def persona_figures_refresh(*, now: datetime | None = None) -> list[PersonaFigures]:
    """Recompute the figures of every active or draft persona.

    An active persona's figures are those of its assigned customers; a draft is not
    matched yet, so its figures are those of the customers its rule matches: what
    accepting it would give when no other persona takes its customers first.
    """
    now = now or timezone.now()
    since = now - timedelta(days=FIGURES_DAYS)
    personas = list(
        Persona.objects.exclude(status=Persona.Status.RETIRED).order_by("pk")
    )
    if not personas:
        PersonaFigures.objects.all().delete()
        return []
    base = Customer.objects.count()

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

    assigned = _customer_set_figures(
        Customer.objects.filter(persona_assignment__isnull=False),
        "persona_assignment__persona_id",
        since=since,
        now=now,
    )
    rows = []
    for persona in personas:
        pk = persona.pk
        if persona.status == Persona.Status.DRAFT:
            found = _customer_set_figures(
                Customer.objects.filter(conditions[pk]), None, since=since, now=now
            )[None]
        else:
            found = assigned[pk]
        rows.append(
            _figures_row(
                persona,
                found,
                base=base,
                matches=matches[f"m{pk}"],
                overlaps=overlaps.get(pk, {}),
                now=now,
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
