"""Real figures, stated-vs-real notes and the warnings of the overview."""

from decimal import Decimal

import pytest

from personas.models import Persona, PersonaFigures
from personas.selectors import persona_facts, persona_overview
from personas.services import persona_create, persona_figures_refresh
from segments.services import recompute_all
from tests.crm.factories import CustomerFactory

from .conftest import buy

pytestmark = pytest.mark.django_db

ACTIVE = Persona.Status.ACTIVE


def refreshed() -> None:
    recompute_all()
    persona_figures_refresh()


def test_figures_count_revenue_margin_and_channels_of_assigned_customers(
    store, products
):
    # Given Joe's two customers (one buys twice, once online) and one outsider
    joe = persona_create(
        name="Joe", query='city = "utrecht"', status=ACTIVE, typical_basket=300
    )
    first = CustomerFactory(city="Utrecht", service_effort=4)
    second = CustomerFactory(city="Utrecht", service_effort=6)
    outsider = CustomerFactory(city="Delft")
    buy(store, first, sku="SHOE-1", quantity=2)  # 2 x 59.95, cost 2 x 4.00
    buy(store, first, sku="BAG-1", channel="online")  # 24.50, cost 4.00
    buy(store, outsider, sku="SHOE-2")

    refreshed()

    figures = PersonaFigures.objects.get(persona=joe)
    assert (figures.base_customers, figures.customers, figures.rule_matches) == (
        3,
        2,
        2,
    )
    assert (figures.orders, figures.buyers) == (2, 1)
    assert figures.revenue == Decimal("144.40")
    assert figures.margin == Decimal("144.40") - Decimal("12.00")
    assert figures.channels == {"store": 1, "online": 1, "phone": 0}
    assert figures.service_effort == Decimal("5.00")
    assert figures.cities == [["Utrecht", 2]]
    del second

    facts = persona_facts(Persona.objects.select_related("figures").get(pk=joe.pk))
    assert facts.aov == Decimal("72.20")
    assert facts.share == pytest.approx(2 / 3)
    # ROI: margin - 2 customers x effort 5 x 4.00 - 2 customers x 6.00
    assert facts.roi == Decimal("132.40") - Decimal("40.00") - Decimal("12.00")
    assert any("spends about EUR 300 per visit" in n for n in facts.notes)
    assert any("spend EUR 72" in n for n in facts.notes)


def test_stated_channel_and_age_differences_are_noted(store, products):
    persona_create(
        name="Sarah",
        query='city = "utrecht"',
        status=ACTIVE,
        buying_channels=["online"],
        age_min=18,
        age_max=25,
    )
    customer = CustomerFactory(city="Utrecht", birth_date="1970-01-01")
    buy(store, customer)
    refreshed()

    facts = persona_facts(Persona.objects.select_related("figures").get())

    assert any("Sarah buys mostly online" in note for note in facts.notes)
    assert any("median age is" in note for note in facts.notes)


def test_no_notes_when_stated_and_real_agree(store, products):
    persona_create(
        name="Joe",
        query='city = "utrecht"',
        status=ACTIVE,
        typical_basket=60,
        buying_channels=["store"],
    )
    buy(store, CustomerFactory(city="Utrecht"))
    refreshed()

    assert persona_facts(Persona.objects.select_related("figures").get()).notes == []


def test_warns_about_more_than_seven_personas():
    CustomerFactory(city="Utrecht")
    for index in range(8):
        persona_create(
            name=f"P{index}", query='city = "utrecht"', status=ACTIVE, priority=index
        )
    refreshed()

    warnings = persona_overview().warnings

    assert any("8 active personas" in w for w in warnings)


def test_warns_about_a_persona_matching_almost_nobody():
    for _ in range(120):
        CustomerFactory(city="Utrecht")
    CustomerFactory(city="Delft")
    persona_create(name="Many", query='city = "utrecht"', status=ACTIVE)
    persona_create(name="Few", query='city = "delft"', status=ACTIVE)
    refreshed()

    warnings = persona_overview().warnings

    assert any(w.startswith("Few matches almost nobody") for w in warnings)
    assert not any(w.startswith("Many matches") for w in warnings)


def test_warns_about_heavily_overlapping_rules():
    for city in ("Utrecht", "Utrecht", "Utrecht", "Delft"):
        CustomerFactory(city=city)
    persona_create(name="Anna", query='city = "utrecht"', status=ACTIVE, priority=2)
    persona_create(name="Bert", query='city in ("utrecht", "delft")', status=ACTIVE)
    persona_create(name="Cees", query='city = "delft"', status=ACTIVE, priority=1)
    refreshed()

    warnings = persona_overview().warnings

    # Anna lies entirely inside Bert; Cees too; Anna and Cees share nobody.
    assert any("Anna and Bert overlap heavily: 100%" in w for w in warnings)
    assert any("Bert and Cees overlap heavily" in w for w in warnings)
    assert not any("Anna and Cees" in w for w in warnings)


def test_shows_the_share_of_customers_matching_no_persona():
    for city in ("Utrecht", "Delft", "Delft", "Delft"):
        CustomerFactory(city=city)
    persona_create(name="Anna", query='city = "utrecht"', status=ACTIVE)
    refreshed()

    overview = persona_overview()

    assert (overview.unassigned, overview.unassigned_share) == (3, 0.75)
    assert "75% of customers match no persona." in overview.warnings


def test_figures_follow_the_whole_base_recompute_on_commit(
    store, products, eager_celery, django_capture_on_commit_callbacks
):
    CustomerFactory(city="Utrecht")
    with django_capture_on_commit_callbacks(execute=True):
        joe = persona_create(name="Joe", query='city = "utrecht"', status=ACTIVE)

    assert PersonaFigures.objects.get(persona=joe).customers == 1
