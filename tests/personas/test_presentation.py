"""How persona figures are presented: ROI per customer and as a ratio, plurals,
chart specs, drafts' figures before accepting."""

from decimal import ROUND_HALF_UP, Decimal

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from crm.charts import channel_colour, colour_for_id
from crm.formats import money_rounded
from personas.admin.charts import overview_charts
from personas.admin.display import facts_row
from personas.models import Persona, PersonaFigures
from personas.selectors import persona_facts, persona_overview
from personas.services import persona_create, persona_figures_refresh, persona_update
from personas.wording import frequency_words
from segments.services import recompute_all
from tests.crm.factories import CustomerFactory

from .conftest import buy

ACTIVE = Persona.Status.ACTIVE


def oracle(margin, customers, effort, per_effort, per_customer):
    """Plain arithmetic, rounded to cents like a till would."""
    cent = Decimal("0.01")
    service = (customers * effort * per_effort).quantize(cent)
    campaign = (customers * per_customer).quantize(cent)
    net = margin - service - campaign
    per = (net / customers).quantize(cent) if customers else None
    ratio = (
        (margin / (service + campaign)).quantize(Decimal("0.1"))
        if (service + campaign)
        else None
    )
    return per, ratio


money = st.decimals(min_value=-5000, max_value=100000, places=2)
unit = st.decimals(min_value=0, max_value=50, places=2)


@given(
    margin=money,
    customers=st.integers(min_value=0, max_value=5000),
    effort=st.decimals(min_value=1, max_value=10, places=2),
    per_effort=unit,
    per_customer=unit,
)
@settings(max_examples=200, deadline=None)
def test_roi_per_customer_and_ratio_follow_the_stated_assumptions(
    margin, customers, effort, per_effort, per_customer
):
    figures = PersonaFigures(
        customers=customers,
        base_customers=max(customers, 1),
        revenue=margin,
        margin=margin,
        orders=0,
        service_effort=effort,
        channels={},
        email_openers=0,
    )
    persona = Persona(name="P")
    persona.figures = figures
    with override_settings(
        LOYALIST_PERSONA_SERVICE_COST_PER_EFFORT=str(per_effort),
        LOYALIST_PERSONA_CAMPAIGN_COST_PER_CUSTOMER=str(per_customer),
    ):
        facts = persona_facts(persona)

    assert (facts.roi_per_customer, facts.roi_ratio) == oracle(
        margin, customers, effort, per_effort, per_customer
    )
    row = facts_row(facts)
    assert row["roi_per_customer"] == money_rounded(facts.roi_per_customer)
    if facts.roi_ratio is not None:
        assert row["roi_ratio"].startswith("returns ")
        assert row["roi_ratio"].endswith("x its cost")
        assert "-" not in row["roi_ratio"]  # the minus is the typographic one


@pytest.mark.parametrize(
    ("per_month", "words"),
    [
        (1.0, "about once a month"),
        (0.7, "about every month"),
        (0.5, "about every 2 months"),
        (0.25, "about every 4 months"),
        (2.2, "2-3 times a month"),
        (0.01, "hardly ever"),
    ],
)
def test_frequency_words_use_correct_plurals(per_month, words):
    assert frequency_words(per_month) == words
    assert "every 1 months" not in frequency_words(per_month)


@pytest.fixture
def compared(db, store, products):
    joe = persona_create(name="Joe", query='city = "utrecht"', status=ACTIVE)
    sarah = persona_create(name="Sarah", query='city = "delft"', status=ACTIVE)
    for index, city in enumerate(["Utrecht", "Utrecht", "Delft", "Gouda"]):
        customer = CustomerFactory(city=city, birth_date=f"19{70 + index}-05-01")
        buy(store, customer, channel="online" if index % 2 else "store")
    recompute_all()
    persona_figures_refresh()
    return joe, sarah


def test_overview_charts_colour_personas_by_id_and_agree_with_the_table(compared):
    joe, sarah = compared
    overview = persona_overview()

    charts = {chart["id"]: chart for chart in overview_charts(overview)}

    revenue = charts["persona-chart-revenue"]
    assert revenue["kind"] == "bar"
    assert revenue["unit"] == "EUR"
    assert revenue["labels"] == ["Joe", "Sarah", "No persona"]
    assert revenue["datasets"][0]["backgroundColor"] == [
        colour_for_id(joe.pk),
        colour_for_id(sarah.pk),
        colour_for_id(None),
    ]
    rows = [*overview.facts, overview.no_persona]
    for value, facts in zip(revenue["datasets"][0]["data"], rows, strict=True):
        whole = facts.revenue.quantize(Decimal("1"), rounding=ROUND_HALF_UP)
        assert value == float(whole)
        assert money_rounded(facts.revenue) == f"EUR {whole:,}"
    channels = charts["persona-chart-channels"]
    assert channels["stacked"] is True
    # Shares add up to 100 %: the axis ends there.
    assert channels["value_max"] == 100
    assert [d["backgroundColor"] for d in channels["datasets"]] == [
        channel_colour(c) for c in ("store", "online", "phone")
    ]
    assert overview.no_persona.customers == 1  # the customer in Gouda


def test_a_drafts_figures_before_accepting_equal_its_figures_after(compared):
    # Given a draft for the Gouda customers
    draft = persona_create(
        name="Gus", query='city = "gouda"', status=Persona.Status.DRAFT
    )
    persona_figures_refresh()
    before = PersonaFigures.objects.get(persona=draft)

    persona_update(persona=draft, status=ACTIVE)
    recompute_all()
    persona_figures_refresh()
    after = PersonaFigures.objects.get(persona=draft)

    fields = [
        f.name
        for f in PersonaFigures._meta.concrete_fields
        if f.name not in {"persona", "computed_at", "overlaps"}
    ]
    assert before.customers == 1
    assert before.revenue > 0
    assert {f: getattr(before, f) for f in fields} == {
        f: getattr(after, f) for f in fields
    }
