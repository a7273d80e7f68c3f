"""Personas over the API: roles, CRUD, members, figures, the customer's persona and
the persona.changed webhook."""

import json

import pytest

from crm.webhooks.models import WebhookDelivery
from crm.webhooks.services import webhook_subscription_create
from personas.models import Persona, PersonaAssignment
from personas.services import persona_create, persona_figures_refresh
from segments.models import Segment
from segments.services import dirty_drain, recompute_all
from tests.crm.factories import CustomerFactory
from tests.personas.conftest import buy

from .conftest import errors_of

URL = "/api/v1/personas/"
ACTIVE = Persona.Status.ACTIVE


@pytest.fixture(autouse=True)
def only_test_segments(db):
    # The default RFM segments are not what these tests are about.
    Segment.objects.update(is_active=False)


def persona(name="Anna", query='city = "utrecht"', **traits):
    traits.setdefault("status", ACTIVE)
    return persona_create(name=name, query=query, recompute=False, **traits)


# Roles -------------------------------------------------------------------------


def test_readers_read_marketers_write_and_tills_are_refused(
    till, reader, marketer, api_admin, nobody
):
    persona()
    body = {"name": "Bert", "query": "orders >= 1"}

    assert reader.get(URL).status_code == 200
    assert reader.get(f"{URL}anna/").status_code == 200
    assert reader.post(URL, body, format="json").status_code == 403
    assert reader.patch(f"{URL}anna/", {"priority": 3}, format="json").status_code == (
        403
    )
    assert reader.delete(f"{URL}anna/").status_code == 403
    assert till.get(URL).status_code == 403
    assert till.get(f"{URL}anna/members/").status_code == 403
    assert till.get(f"{URL}anna/stats/").status_code == 403
    assert nobody.get(URL).status_code == 403
    assert marketer.post(URL, body, format="json").status_code == 201
    assert (
        api_admin.patch(f"{URL}bert/", {"priority": 2}, format="json").json()[
            "priority"
        ]
        == 2
    )


def test_unknown_slug_is_404_in_the_error_format(reader):
    response = reader.get(f"{URL}nobody-like-this/")

    assert response.status_code == 404
    assert errors_of(response) == [(None, "not_found")]


# CRUD --------------------------------------------------------------------------


def test_marketer_creates_a_persona_from_a_query_and_gets_both_forms(
    marketer, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer.post(
            URL,
            {
                "name": "Sarah",
                "query": "orders >= 2",
                "status": "active",
                "priority": 5,
                "title": "Loyal regular",
                "age_min": 35,
                "age_max": 50,
                "buying_channels": ["store", "online"],
                "preferred_channels": ["email"],
                "sources": ["surveys"],
                "typical_basket": "80.00",
                "brand_loyalty": "high",
            },
            format="json",
        )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["slug"] == "sarah"
    assert body["rules"] == {"field": "orders", "op": "gte", "value": 2}
    assert body["query"] == "orders >= 2"
    assert (body["status"], body["priority"], body["customers"]) == ("active", 5, 0)
    assert body["buying_channels"] == ["store", "online"]
    assert body["typical_basket"] == "80.00"
    # An active persona starts the whole-base matching once committed.
    assert callbacks
    assert Persona.objects.get(slug="sarah").title == "Loyal regular"


def test_a_rule_given_as_json_comes_back_as_text_too(marketer):
    response = marketer.post(
        URL,
        {"name": "Joe", "rules": {"field": "orders", "op": "gte", "value": 1}},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["query"] == "orders >= 1"
    assert response.json()["status"] == "draft"


def test_list_is_paginated_and_filtered_by_status(reader):
    persona("Anna")
    persona("Bert", status=Persona.Status.DRAFT)

    everyone = reader.get(URL, {"page_size": 1}).json()
    drafts = reader.get(URL, {"status": "draft"}).json()

    assert len(everyone["results"]) == 1
    assert everyone["next"]
    assert [p["slug"] for p in drafts["results"]] == ["bert"]


def test_update_changes_the_rule_and_traits_but_keeps_the_slug(
    marketer, django_capture_on_commit_callbacks
):
    persona("Anna")

    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer.patch(
            f"{URL}anna/",
            {"query": "orders >= 3", "slug": "other", "goals": "Quality"},
            format="json",
        )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["slug"], body["query"], body["goals"]) == (
        "anna",
        "orders >= 3",
        "Quality",
    )
    # A changed rule rematches the customers.
    assert callbacks


def test_delete_removes_the_persona(marketer):
    persona("Anna")

    response = marketer.delete(f"{URL}anna/")

    assert response.status_code == 204
    assert not Persona.objects.exists()


# Validation --------------------------------------------------------------------


def test_rules_and_query_together_or_neither_is_refused(marketer):
    both = marketer.post(
        URL,
        {
            "name": "X",
            "query": "orders >= 2",
            "rules": {"field": "orders", "op": "gte", "value": 2},
        },
        format="json",
    )
    neither = marketer.post(URL, {"name": "Y"}, format="json")

    assert both.status_code == neither.status_code == 400
    assert errors_of(both) == [("rules", "rules_or_query")]
    assert errors_of(neither) == [("rules", "rules_or_query")]


def test_bad_rules_are_field_errors_in_the_one_format(marketer):
    syntax = marketer.post(URL, {"name": "X", "query": "orders >>> 2"}, format="json")
    unknown = marketer.post(
        URL,
        {"name": "Y", "rules": {"field": "shoe_size", "op": "gte", "value": 2}},
        format="json",
    )
    # A persona's rule may not depend on personas.
    circular = marketer.post(
        URL, {"name": "Z", "query": 'persona = "anna"'}, format="json"
    )

    assert errors_of(syntax) == [("query", "syntax")]
    assert errors_of(unknown) == [("rules", "invalid_rule")]
    assert errors_of(circular) == [("query", "invalid_rule")]
    assert not Persona.objects.exists()


def test_traits_are_checked_field_by_field(marketer):
    persona("Anna")

    response = marketer.post(
        URL,
        {
            "name": "Anna",
            "query": "orders >= 1",
            "status": "sleeping",
            "age_min": 50,
            "age_max": 30,
            "buying_channels": ["carrier-pigeon"],
            "priority": 10**12,
        },
        format="json",
    )
    taken = marketer.post(URL, {"name": "Anna", "query": "orders >= 1"}, format="json")
    upside_down = marketer.post(
        URL,
        {"name": "Bert", "query": "orders >= 1", "age_min": 50, "age_max": 30},
        format="json",
    )

    assert response.status_code == 400
    assert sorted(errors_of(response)) == [
        ("buying_channels[0]", "invalid_choice"),
        ("priority", "max_value"),
        ("status", "invalid_choice"),
    ]
    assert errors_of(taken) == [("slug", "slug_taken")]
    assert errors_of(upside_down) == [("age_max", "age_range")]


# Members and figures -----------------------------------------------------------


def test_members_are_the_assigned_customers_page_by_page(reader):
    anna = persona("Anna")
    customers = [CustomerFactory(city="Utrecht") for _ in range(3)]
    CustomerFactory(city="Delft")
    recompute_all()

    first = reader.get(f"{URL}anna/members/", {"page_size": 2}).json()
    second = reader.get(first["next"]).json()

    rows = first["results"] + second["results"]
    assert sorted(row["id"] for row in rows) == sorted(c.pk for c in customers)
    assert set(rows[0]) == {"id", "email", "name", "assigned_at"}
    assert second["next"] is None
    assert PersonaAssignment.objects.filter(persona=anna).count() == 3


def test_members_filter_by_email_and_refuse_a_forged_cursor(reader):
    persona("Anna")
    joe = CustomerFactory(city="Utrecht", email="joe@example.com")
    CustomerFactory(city="Utrecht")
    recompute_all()

    found = reader.get(f"{URL}anna/members/", {"email": "JOE@example.com"}).json()
    forged = reader.get(f"{URL}anna/members/", {"cursor": "cD1hYmM="})

    assert [row["id"] for row in found["results"]] == [joe.pk]
    assert forged.status_code == 400
    assert errors_of(forged) == [("cursor", "invalid_cursor")]


def test_members_query_count_is_pinned(reader, django_assert_max_num_queries):
    persona("Anna")
    for _ in range(20):
        CustomerFactory(city="Utrecht")
    recompute_all()

    with django_assert_max_num_queries(6):
        response = reader.get(f"{URL}anna/members/")

    assert len(response.json()["results"]) == 20


def test_stats_are_the_stored_figures_with_overlaps_by_slug(reader, store, products):
    persona("Anna", priority=2)
    persona("Bert", query="orders >= 1", priority=1)
    buyer = CustomerFactory(city="Utrecht", birth_date="1990-05-01")
    CustomerFactory(city="Utrecht")
    buy(store, buyer, sku="SHOE-1", quantity=2)
    recompute_all()
    persona_figures_refresh()

    body = reader.get(f"{URL}anna/stats/").json()

    assert body["persona"] == "anna"
    assert body["computed_at"]
    assert (body["customers"], body["rule_matches"], body["buyers"]) == (2, 2, 1)
    assert body["orders"] == 1
    assert body["revenue"] == "119.90"
    assert body["channels"] == {"store": 1, "online": 0, "phone": 0}
    assert body["cities"] == [{"city": "Utrecht", "customers": 2}]
    assert body["overlaps"] == {"bert": 1}
    assert body["average_order_value"] == "119.90"


def test_stats_before_the_first_computation_are_zero(reader):
    persona("Anna")

    response = reader.get(f"{URL}anna/stats/")

    assert response.status_code == 200
    body = response.json()
    assert body["computed_at"] is None
    assert (body["customers"], body["revenue"], body["overlaps"]) == (0, "0.00", {})


# The customer resource ---------------------------------------------------------


def test_customer_detail_names_the_persona_and_the_filter_finds_its_customers(
    reader,
):
    persona("Anna")
    utrecht = CustomerFactory(city="Utrecht")
    delft = CustomerFactory(city="Delft")
    recompute_all()

    assert reader.get(f"/api/v1/customers/{utrecht.pk}/").json()["persona"] == "anna"
    assert reader.get(f"/api/v1/customers/{delft.pk}/").json()["persona"] is None
    found = reader.get("/api/v1/customers/", {"persona": "anna"}).json()
    assert [row["id"] for row in found["results"]] == [utrecht.pk]
    assert reader.get("/api/v1/customers/", {"persona": "nope"}).json()["results"] == []


def test_customer_list_query_count_stays_pinned_with_personas(
    reader, django_assert_max_num_queries
):
    persona("Anna")
    for index in range(20):
        CustomerFactory(city="Utrecht" if index % 2 else "Delft")
    recompute_all()

    with django_assert_max_num_queries(8):
        response = reader.get("/api/v1/customers/")

    personas = [row["persona"] for row in response.json()["results"]]
    assert personas.count("anna") == 10
    assert personas.count(None) == 10


# persona.changed ---------------------------------------------------------------


def subscribe(events=("persona.changed",)):
    return webhook_subscription_create(
        name="Mailer", url="https://hooks.example.com/loyalist", events=list(events)
    )


def test_a_contact_that_changes_the_persona_queues_a_persona_changed_delivery(
    store, products
):
    # Given Joe (one order) and Sarah (repeat buyers, higher priority)
    subscribe()
    customer = CustomerFactory(email="c@example.com")
    persona("Joe", query="orders >= 1", priority=1)
    persona("Sarah", query="orders >= 2", priority=2)
    buy(store, customer)
    dirty_drain()

    # When the customer buys again
    buy(store, customer)
    dirty_drain()

    # Then each change was queued for the subscriber, with both slugs
    deliveries = WebhookDelivery.objects.filter(event="persona.changed").order_by("id")
    data = [json.loads(d.body)["data"] for d in deliveries]
    assert [(item["from"], item["to"]) for batch in data for item in batch] == [
        (None, "joe"),
        ("joe", "sarah"),
    ]
    assert data[1][0]["customer"] == {"id": customer.pk, "email": "c@example.com"}
    assert data[1][0]["cause"] == "contact"


def test_the_whole_base_pass_queues_persona_changed_deliveries():
    subscribe()
    utrecht = [CustomerFactory(city="Utrecht") for _ in range(2)]
    CustomerFactory(city="Delft")
    persona("Anna")

    recompute_all()

    delivery = WebhookDelivery.objects.get(event="persona.changed")
    body = json.loads(delivery.body)
    assert body["event"] == "persona.changed"
    assert sorted(item["customer"]["id"] for item in body["data"]) == sorted(
        c.pk for c in utrecht
    )
    assert {(item["from"], item["to"]) for item in body["data"]} == {(None, "anna")}

    # A second pass changes nobody and sends nothing more.
    recompute_all()
    assert WebhookDelivery.objects.filter(event="persona.changed").count() == 1


def test_no_persona_changed_subscription_means_no_delivery():
    subscribe(events=["receipt.created"])
    CustomerFactory(city="Utrecht")
    persona("Anna")

    recompute_all()

    assert PersonaAssignment.objects.count() == 1
    assert not WebhookDelivery.objects.exists()


def test_without_a_subscriber_changes_are_not_read_back(
    django_assert_max_num_queries, db
):
    from personas.models import PersonaChange
    from personas.webhooks import persona_changes_emit

    with django_assert_max_num_queries(1):
        assert persona_changes_emit(changes=PersonaChange.objects.all()) == 0


def test_a_time_filter_with_an_offset_the_database_refuses_is_a_400(reader):
    persona("Anna")

    response = reader.get(
        f"{URL}anna/members/", {"assigned_after": "2024-01-01T00:00:00+19:51"}
    )
    customers = reader.get(
        "/api/v1/customers/", {"created_before": "0314-06-08T18:20:32+19:51"}
    )
    # The request after a refused one still works (no aborted transaction).
    after = reader.get("/api/v1/customers/")

    assert errors_of(response) == [("assigned_after", "invalid")]
    assert errors_of(customers) == [("created_before", "invalid")]
    assert after.status_code == 200
