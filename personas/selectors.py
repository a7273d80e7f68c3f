"""Reads for the persona pages: the card, the overview and their warnings."""

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Avg, Count, DecimalField, F, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.formats import money_rounded
from crm.models import Customer, Receipt, ReceiptLine, SalesChannel
from segments.compiler import PERSONA_MARK, context_build, segment_references
from segments.fields import PersonaRule
from segments.selectors import rules_explain

from .models import Persona, PersonaAssignment, PersonaFigures
from .services.figures import (
    AGE_BANDS,
    FIGURES_DAYS,
    campaign_cost_per_customer,
    service_cost_per_effort,
)
from .wording import frequency_words

# Shops do well with three to five personas; past seven nobody writes for each.
MAX_PERSONAS = 7
# A persona whose customers are under this share of the base is hardly anyone.
MIN_SHARE = 0.01
# Two rules overlap heavily when this share of the smaller one's matches match both.
OVERLAP_SHARE = 0.5
# Customers matching no persona: shown always, a warning from this share on.
UNASSIGNED_WARNING_SHARE = 0.25
# Stated and real figures "differ notably" past these ratios.
BASKET_TOLERANCE = 0.2
FREQUENCY_TOLERANCE = 0.5
CHANNELS = ("store", "online", "phone")


@dataclass
class PersonaFacts:
    """A persona with its matched customers' real figures, ready to show."""

    persona: Persona | None  # None: the customers matching no persona
    figures: PersonaFigures | None
    customers: int = 0
    share: float = 0.0
    revenue: Decimal = Decimal("0")
    margin: Decimal = Decimal("0")
    aov: Decimal | None = None
    orders_per_month: float | None = None
    channel_shares: dict[str, float] = field(default_factory=dict)
    email_open_share: float | None = None
    service_cost: Decimal = Decimal("0")
    campaign_cost: Decimal = Decimal("0")
    roi: Decimal = Decimal("0")
    notes: list[str] = field(default_factory=list)

    @property
    def cost(self) -> Decimal:
        return self.service_cost + self.campaign_cost

    @property
    def roi_per_customer(self) -> Decimal | None:
        """The net return of one customer a year; None without customers."""
        if not self.customers:
            return None
        return (self.roi / self.customers).quantize(Decimal("0.01"))

    @property
    def roi_ratio(self) -> Decimal | None:
        """Margin per unit of cost ("returns 3.2x its cost"); None without cost."""
        if not self.cost:
            return None
        return (self.margin / self.cost).quantize(Decimal("0.1"))


def persona_facts(persona: Persona) -> PersonaFacts:
    """Real figures of a persona from its stored figures (None before computed)."""
    figures = getattr(persona, "figures", None)
    facts = PersonaFacts(persona=persona, figures=figures)
    if figures is None:
        return facts
    facts.customers = figures.customers
    facts.share = (
        figures.customers / figures.base_customers if figures.base_customers else 0
    )
    facts.revenue = figures.revenue
    facts.margin = figures.margin
    if figures.orders:
        facts.aov = (figures.revenue / figures.orders).quantize(Decimal("0.01"))
        total = sum(figures.channels.values()) or 1
        facts.channel_shares = {c: figures.channels.get(c, 0) / total for c in CHANNELS}
    if figures.customers:
        facts.orders_per_month = (
            figures.orders / figures.customers / (FIGURES_DAYS / 30.44)
        )
        facts.email_open_share = figures.email_openers / figures.customers
    effort = figures.service_effort or Decimal("0")
    facts.service_cost = (
        figures.customers * effort * service_cost_per_effort()
    ).quantize(Decimal("0.01"))
    facts.campaign_cost = (figures.customers * campaign_cost_per_customer()).quantize(
        Decimal("0.01")
    )
    facts.roi = figures.margin - facts.service_cost - facts.campaign_cost
    facts.notes = stated_vs_real(persona, facts)
    return facts


def stated_vs_real(persona: Persona, facts: PersonaFacts) -> list[str]:
    """Sentences where the persona's stated traits and its customers differ notably."""
    figures = facts.figures
    if figures is None or not figures.customers:
        return []
    notes = []
    name = persona.name
    if persona.typical_basket and facts.aov is not None:
        stated = persona.typical_basket
        if abs(facts.aov - stated) > stated * Decimal(str(BASKET_TOLERANCE)):
            notes.append(
                _(
                    "%(name)s spends about %(stated)s per visit; matched customers "
                    "spend %(real)s."
                )
                % {
                    "name": name,
                    "stated": money_rounded(stated),
                    "real": money_rounded(facts.aov),
                }
            )
    if persona.purchases_per_month and facts.orders_per_month is not None:
        stated = float(persona.purchases_per_month)
        real = facts.orders_per_month
        if abs(real - stated) > stated * FREQUENCY_TOLERANCE:
            notes.append(
                _(
                    "%(name)s buys about %(stated)s times a month; matched customers "
                    "buy %(real)s times a month."
                )
                % {"name": name, "stated": f"{stated:.2g}", "real": f"{real:.2g}"}
            )
    if figures.median_age is not None and (
        persona.age_min is not None or persona.age_max is not None
    ):
        low = persona.age_min if persona.age_min is not None else 0
        high = persona.age_max if persona.age_max is not None else 200
        if not low <= figures.median_age <= high:
            notes.append(
                _("%(name)s is %(range)s; matched customers' median age is %(age)s.")
                % {"name": name, "range": persona.age_range, "age": figures.median_age}
            )
    if persona.buying_channels and facts.channel_shares:
        stated = persona.buying_channels[0]
        real = max(CHANNELS, key=lambda c: facts.channel_shares.get(c, 0))
        if stated != real:
            notes.append(
                _(
                    "%(name)s buys mostly %(stated)s; matched customers buy mostly "
                    "%(real)s (%(share)d%% of orders)."
                )
                % {
                    "name": name,
                    "stated": _channel_words(stated),
                    "real": _channel_words(real),
                    "share": round(facts.channel_shares[real] * 100),
                }
            )
    if persona.gender and figures.genders:
        share = figures.genders.get(persona.gender, 0) / figures.customers
        if share < 0.5:
            notes.append(
                _("%(name)s is %(gender)s; %(share)d%% of matched customers are.")
                % {
                    "name": name,
                    "gender": persona.get_gender_display().lower(),
                    "share": round(share * 100),
                }
            )
    return notes


def channel_label(channel: str) -> str:
    """A sales channel's label ("In store"), or the code when unknown."""
    return str(dict(SalesChannel.choices).get(channel, channel))


def _channel_words(channel: str) -> str:
    return {"store": _("in store"), "online": _("online"), "phone": _("by phone")}.get(
        channel, channel
    )


def persona_list() -> QuerySet[Persona]:
    """Personas with their stored figures, active ones first."""
    return (
        Persona.objects.select_related("figures")
        .annotate(assigned=Count("assignments"))
        .order_by("status", "-priority", "pk")
    )


@dataclass
class Overview:
    facts: list[PersonaFacts]
    base_customers: int
    unassigned: int
    unassigned_share: float
    warnings: list[str]
    no_persona: PersonaFacts | None = None


def no_persona_facts(*, now: datetime | None = None) -> tuple[PersonaFacts, int]:
    """The customers matching no persona, with the same figures and costs as a
    persona's, so the overview compares personas against the rest; and the number
    of customers in the base."""
    now = now or timezone.now()
    since = now - timedelta(days=FIGURES_DAYS)
    people = Customer.objects.aggregate(
        base=Count("pk"),
        n=Count("pk", filter=Q(persona_assignment__isnull=True)),
        effort=Avg("service_effort", filter=Q(persona_assignment__isnull=True)),
    )
    sales = Receipt.objects.filter(
        status=Receipt.Status.COMPLETED,
        purchased_at__gte=since,
        customer__isnull=False,
        customer__persona_assignment__isnull=True,
    ).aggregate(
        orders=Count("pk"),
        revenue=Sum("total"),
        **{c: Count("pk", filter=Q(channel=c)) for c in CHANNELS},
    )
    margin = ReceiptLine.objects.filter(
        receipt__status=Receipt.Status.COMPLETED,
        receipt__purchased_at__gte=since,
        receipt__customer__isnull=False,
        receipt__customer__persona_assignment__isnull=True,
    ).aggregate(
        margin=Sum(
            F("line_total") - F("quantity") * F("product__cost"),
            output_field=DecimalField(max_digits=16, decimal_places=2),
        )
    )["margin"]
    customers = people["n"]
    facts = PersonaFacts(persona=None, figures=None, customers=customers)
    facts.share = customers / people["base"] if people["base"] else 0.0
    facts.revenue = sales["revenue"] or Decimal("0")
    facts.margin = margin or Decimal("0")
    orders = sales["orders"]
    if orders:
        facts.aov = (facts.revenue / orders).quantize(Decimal("0.01"))
        facts.channel_shares = {c: sales[c] / orders for c in CHANNELS}
    if customers:
        facts.orders_per_month = orders / customers / (FIGURES_DAYS / 30.44)
    effort = Decimal(str(round(people["effort"], 2))) if people["effort"] else 0
    facts.service_cost = (customers * effort * service_cost_per_effort()).quantize(
        Decimal("0.01")
    )
    facts.campaign_cost = (customers * campaign_cost_per_customer()).quantize(
        Decimal("0.01")
    )
    facts.roi = facts.margin - facts.service_cost - facts.campaign_cost
    return facts, people["base"]


def persona_overview() -> Overview:
    """Every persona that is not retired, side by side, with the warnings."""
    personas = list(
        Persona.objects.exclude(status=Persona.Status.RETIRED)
        .select_related("figures")
        .order_by("status", "-priority", "pk")
    )
    facts = [persona_facts(persona) for persona in personas]
    rest, base = no_persona_facts()
    return Overview(
        facts=facts,
        base_customers=base,
        unassigned=rest.customers,
        unassigned_share=rest.share,
        warnings=persona_warnings(facts, unassigned_share=rest.share),
        no_persona=rest,
    )


def persona_warnings(
    facts: list[PersonaFacts], *, unassigned_share: float
) -> list[str]:
    """Too many personas, personas matching almost nobody, heavy rule overlaps and
    customers matching no persona."""
    active = [f for f in facts if f.persona.status == Persona.Status.ACTIVE]
    warnings = []
    if len(active) > MAX_PERSONAS:
        warnings.append(
            _(
                "%(count)d active personas: shops do best with three to five, and "
                "more than %(max)d are hard to write for."
            )
            % {"count": len(active), "max": MAX_PERSONAS}
        )
    for fact in active:
        if fact.figures is not None and fact.share < MIN_SHARE:
            warnings.append(
                _(
                    "%(name)s matches almost nobody: %(count)d customers "
                    "(%(share).1f%% of all)."
                )
                % {
                    "name": fact.persona.name,
                    "count": fact.customers,
                    "share": fact.share * 100,
                }
            )
    by_pk = {f.persona.pk: f for f in active}
    for fact in active:
        if fact.figures is None:
            continue
        for other_pk, shared in sorted(fact.figures.overlaps.items()):
            other = by_pk.get(int(other_pk))
            if (
                other is None
                or other.figures is None
                or other.persona.pk < fact.persona.pk
            ):
                continue
            smaller = min(fact.figures.rule_matches, other.figures.rule_matches)
            if smaller and shared / smaller >= OVERLAP_SHARE:
                warnings.append(
                    _(
                        "The rules of %(a)s and %(b)s overlap heavily: %(share)d%% "
                        "of the smaller one's matches match both, and only priority "
                        "tells them apart."
                    )
                    % {
                        "a": fact.persona.name,
                        "b": other.persona.name,
                        "share": round(shared / smaller * 100),
                    }
                )
    if active and unassigned_share >= UNASSIGNED_WARNING_SHARE:
        warnings.append(
            _("%(share)d%% of customers match no persona.")
            % {"share": round(unassigned_share * 100)}
        )
    return warnings


def persona_card(*, persona: Persona) -> dict[str, Any]:
    """Everything the printable persona card shows."""
    facts = persona_facts(persona)
    return {
        "persona": persona,
        "facts": facts,
        "buying_channels": [channel_label(c) for c in persona.buying_channels],
        "preferred_channels": [
            str(dict(Customer.PreferredChannel.choices).get(c, c))
            for c in persona.preferred_channels
        ],
        "sources": [
            str(dict(Persona.Source.choices).get(s, s)) for s in persona.sources
        ],
        "frequency": frequency_words(float(persona.purchases_per_month))
        if persona.purchases_per_month
        else "",
        "typical_basket": money_rounded(persona.typical_basket)
        if persona.typical_basket
        else "",
        "ages": _bars(age_bands(facts.figures)),
        "cities": facts.figures.cities if facts.figures else [],
        "figures_days": FIGURES_DAYS,
        "service_cost_per_effort": service_cost_per_effort(),
        "campaign_cost_per_customer": campaign_cost_per_customer(),
    }


def age_bands(figures: PersonaFigures | None) -> dict[str, int]:
    """Customers per age band, youngest first (JSON columns keep no key order)."""
    if figures is None:
        return {}
    return {label: figures.ages.get(label, 0) for _low, _high, label in AGE_BANDS}


def _bars(counts: dict[str, int]) -> list[dict[str, Any]]:
    total = sum(counts.values()) or 1
    top = max(counts.values(), default=0) or 1
    return [
        {"label": label, "count": n, "share": n / total, "width": n / top}
        for label, n in counts.items()
    ]


def persona_member_list(*, persona: Persona) -> QuerySet[Customer]:
    """The persona's customers with `assigned_at`, the latest assignments first."""
    return (
        Customer.objects.filter(persona_assignment__persona=persona)
        .annotate(assigned_at=F("persona_assignment__assigned_at"))
        .order_by("-assigned_at", "-pk")
    )


def persona_stats(*, persona: Persona) -> dict[str, Any]:
    """The persona's stored figures with what follows from them (shares, costs,
    return, stated-vs-real notes), overlaps keyed by the other persona's slug."""
    facts = persona_facts(persona)
    figures = facts.figures
    stats: dict[str, Any] = {
        "persona": persona.slug,
        "computed_at": None,
        "figures_days": FIGURES_DAYS,
        "base_customers": 0,
        "customers": facts.customers,
        "share": facts.share,
        "rule_matches": 0,
        "buyers": 0,
        "orders": 0,
        "revenue": facts.revenue,
        "margin": facts.margin,
        "average_order_value": facts.aov,
        "orders_per_month": facts.orders_per_month,
        "service_effort": None,
        "email_openers": 0,
        "email_open_share": facts.email_open_share,
        "channels": dict.fromkeys(CHANNELS, 0),
        "ages": {},
        "median_age": None,
        "genders": {},
        "cities": [],
        "overlaps": {},
        "service_cost": facts.service_cost,
        "campaign_cost": facts.campaign_cost,
        "roi": facts.roi,
        "notes": facts.notes,
    }
    if figures is None:
        return stats
    slugs = dict(Persona.objects.values_list("pk", "slug"))
    stats.update(
        computed_at=figures.computed_at,
        base_customers=figures.base_customers,
        rule_matches=figures.rule_matches,
        buyers=figures.buyers,
        orders=figures.orders,
        service_effort=figures.service_effort,
        email_openers=figures.email_openers,
        channels={c: figures.channels.get(c, 0) for c in CHANNELS},
        ages=age_bands(figures),
        median_age=figures.median_age,
        genders=figures.genders,
        cities=[{"city": city, "customers": n} for city, n in figures.cities],
        overlaps={
            slugs[int(pk)]: shared
            for pk, shared in sorted(figures.overlaps.items())
            if int(pk) in slugs
        },
    )
    return stats


def customer_export_sections(*, customer: Customer) -> dict[str, Any]:
    """`customer_data_export_sections` receiver: the customer's persona."""
    assignment = (
        PersonaAssignment.objects.filter(customer=customer)
        .select_related("persona")
        .first()
    )
    return {"persona": assignment.persona.slug if assignment else None}


def persona_rules_active() -> tuple[PersonaRule, ...]:
    """`persona_rules` receiver: the active personas' rules in assignment order
    (largest priority first, then the oldest)."""
    return tuple(
        PersonaRule(pk=pk, slug=slug, rules=rules)
        for pk, slug, rules in Persona.objects.filter(status=Persona.Status.ACTIVE)
        .order_by("-priority", "pk")
        .values_list("pk", "slug", "rules")
    )


def persona_segment_references(*, slug: str) -> list[str]:
    """`segment_references_found` receiver: the personas whose rules name `slug`."""
    return [
        f"persona {persona.slug}"
        for persona in Persona.objects.only("slug", "rules")
        if slug in segment_references(persona.rules)
    ]


@dataclass
class PersonaReason:
    """One active persona's rule, explained for one customer."""

    persona: Persona
    tree: dict

    @property
    def matches(self) -> bool:
        return self.tree["result"]


@dataclass
class CustomerPersona:
    """Which persona a customer has and why, for the customer's page.

    `chosen` is the persona the rules give now: the first matching one in
    assignment order (largest priority, then the older). `passed_over` are the
    personas tried before it, which the customer does not match; `also_matching`
    those after it that match too but rank lower. `stored` is the assignment the
    engine wrote, which lags the rules until its next pass.
    """

    chosen: PersonaReason | None
    passed_over: list[PersonaReason]
    also_matching: list[PersonaReason]
    stored: Persona | None

    @property
    def stale(self) -> bool:
        chosen = self.chosen.persona.pk if self.chosen else None
        return chosen != (self.stored.pk if self.stored else None)


def customer_persona_explain(*, customer: Customer) -> CustomerPersona:
    """The customer's persona and why, from every active persona's rule at once.

    Queries: the active personas, the segments' rules (and the stored RFM
    thresholds when a rule scores RFM), one for every rule's conditions, and the
    stored assignment; however many personas there are.
    """
    personas = list(
        Persona.objects.filter(status=Persona.Status.ACTIVE).order_by("-priority", "pk")
    )
    rules = tuple(PersonaRule(pk=p.pk, slug=p.slug, rules=p.rules) for p in personas)
    ctx = context_build(personas=rules)
    # Persona rules compile with the persona mark on the stack, as the engine does.
    inner = replace(ctx, stack=(*ctx.stack, PERSONA_MARK))
    trees = rules_explain(
        customer=customer, rules=[(p.rules, inner) for p in personas], ctx=ctx
    )
    reasons = [
        PersonaReason(persona, tree)
        for persona, tree in zip(personas, trees, strict=True)
    ]
    first = next((i for i, reason in enumerate(reasons) if reason.matches), None)
    assignment = (
        PersonaAssignment.objects.filter(customer=customer)
        .select_related("persona")
        .first()
    )
    return CustomerPersona(
        chosen=reasons[first] if first is not None else None,
        passed_over=reasons[:first] if first is not None else reasons,
        also_matching=(
            [r for r in reasons[first + 1 :] if r.matches] if first is not None else []
        ),
        stored=assignment.persona if assignment else None,
    )
