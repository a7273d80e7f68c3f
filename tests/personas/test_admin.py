"""The persona admin: list, card, overview, editing, suggestions and actions."""

import pytest
from django.urls import reverse

from personas.models import Persona, PersonaAssignment
from personas.services import persona_create, persona_figures_refresh
from segments.services import recompute_all
from tests.crm.factories import CustomerFactory, UserFactory

from .conftest import buy

pytestmark = pytest.mark.django_db

ACTIVE = Persona.Status.ACTIVE
# Session, user, the persona and, before Django caches it, its content type.
CHANGE_PAGE_QUERIES = 4
# Session, user, two counts and the page of personas.
CHANGELIST_QUERIES = 5


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(username="boss", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def personas(store, products):
    joe = persona_create(
        name="Joe",
        title="Special-occasion buyer",
        query='city = "utrecht"',
        status=ACTIVE,
        priority=2,
        typical_basket=300,
        age_min=30,
        age_max=50,
        buying_channels=["store"],
        goals="Presents that land.",
    )
    sarah = persona_create(
        name="Sarah", query='city = "delft"', status=ACTIVE, buying_channels=["online"]
    )
    for index in range(6):
        customer = CustomerFactory(
            city="Utrecht" if index % 2 else "Delft", birth_date=f"19{80 + index}-05-01"
        )
        buy(store, customer, channel="online" if index % 3 else "store")
    recompute_all()
    persona_figures_refresh()
    return {"joe": joe, "sarah": sarah}


def url(name: str, *args) -> str:
    return reverse(f"admin:personas_persona_{name}", args=args)


def test_changelist_lists_personas_with_their_customers(
    staff, personas, django_assert_max_num_queries
):
    # Session, user, two counts and the page of personas.
    with django_assert_max_num_queries(5):
        response = staff.get(url("changelist"))

    content = response.content.decode()
    assert response.status_code == 200
    assert "Joe" in content
    assert "Sarah" in content
    assert url("card", personas["joe"].pk) in content
    assert url("overview") in content
    assert url("suggest") in content


def test_persona_card_shows_stated_traits_real_figures_and_differences(
    staff, personas, django_assert_max_num_queries
):
    # Session, user and the persona with its figures.
    with django_assert_max_num_queries(3):
        response = staff.get(url("card", personas["joe"].pk))

    content = response.content.decode()
    assert response.status_code == 200
    assert "Special-occasion buyer" in content
    assert "Presents that land." in content
    assert 'id="persona-real-figures"' in content
    assert "Joe spends about EUR 300 per visit; matched customers spend" in content
    assert "<svg" not in content
    assert 'data-chart="persona-card-channels"' in content
    assert 'data-chart="persona-card-ages"' in content
    assert "Net return per customer" in content
    assert "returns " in content
    assert "its cost" in content
    assert "EUR 4.00 a year per point of service effort" in content
    assert "city = &quot;utrecht&quot;" in content


def test_overview_compares_personas_with_charts_and_warnings(
    staff, personas, django_assert_max_num_queries
):
    # Session, user, personas with figures, then the customers matching no
    # persona: their count, sales and margin.
    with django_assert_max_num_queries(6):
        response = staff.get(url("overview"))

    content = response.content.decode()
    assert response.status_code == 200
    assert 'class="persona-chart"' not in content
    assert content.count('class="loyalist-chart"') == 8
    assert content.count("chart.umd.min.js") == 1
    assert 'class="persona-none"' in content
    assert "Share of customers" in content
    assert "Channel mix" in content
    assert "0 of 6 customers (0%) match no persona" in content


def test_adding_a_persona_through_the_admin_uses_the_service(staff, db):
    response = staff.post(
        url("add"),
        {
            "name": "Femke",
            "slug": "",
            "title": "Parent",
            "status": "active",
            "priority": "3",
            "query": 'family_situation = "young_children"',
            "rules": "",
            "buying_channels": "store, online",
            "preferred_channels": "email, post",
            "sources": ["surveys"],
        },
    )

    assert response.status_code == 302, response.content.decode()[:3000]
    femke = Persona.objects.get(slug="femke")
    assert femke.rules == {
        "field": "family_situation",
        "op": "eq",
        "value": "young_children",
    }
    assert femke.buying_channels == ["store", "online"]
    assert femke.preferred_channels == ["email", "post"]


def test_admin_refuses_a_rule_that_uses_personas(staff, db):
    response = staff.post(
        url("add"),
        {
            "name": "Loop",
            "status": "draft",
            "priority": "0",
            "query": 'persona = "joe"',
            "rules": "",
        },
    )

    assert response.status_code == 200
    assert "cannot depend on personas" in response.content.decode()
    assert not Persona.objects.exists()


def test_change_form_links_to_the_card(staff, personas):
    response = staff.get(url("change", personas["joe"].pk))

    assert response.status_code == 200
    assert url("card", personas["joe"].pk) in response.content.decode()


def test_accept_action_activates_drafts_and_assigns_customers(
    staff, store, products, eager_celery, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(city="Gouda")
    draft = persona_create(name="Gerda", query='city = "gouda"')

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(
            url("changelist"),
            {"action": "activate", "_selected_action": [draft.pk]},
        )

    assert response.status_code == 302
    draft.refresh_from_db()
    assert draft.status == ACTIVE
    assert PersonaAssignment.objects.get(customer=customer).persona == draft


def test_suggest_view_clusters_and_offers_drafts(
    staff, store, products, eager_celery, django_capture_on_commit_callbacks
):
    for index in range(12):
        buy(store, CustomerFactory(), quantity=1 + index % 4)

    assert staff.get(url("suggest")).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(url("suggest"), {"k": "2"})

    assert response.status_code == 302
    assert Persona.objects.filter(status=Persona.Status.DRAFT).count() == 2


def test_change_page_has_capitalised_labels_and_a_help_sentence(
    staff, personas, django_assert_max_num_queries
):
    with django_assert_max_num_queries(CHANGE_PAGE_QUERIES):
        response = staff.get(url("change", personas["joe"].pk))

    content = response.content.decode()
    assert response.status_code == 200
    assert "Matching rule" in content
    assert "Where they buy" in content
    assert "Short title" in content
    assert 'for example "Special-occasion buyer"' in content.replace("&quot;", '"')


def test_changelist_query_count_is_pinned(staff, personas, django_assert_num_queries):
    with django_assert_num_queries(CHANGELIST_QUERIES):
        staff.get(url("changelist"))
