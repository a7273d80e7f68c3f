"""Matching: each customer gets at most one persona, kept current by the engine."""

import pytest
from django.core.exceptions import ValidationError

from personas.models import Persona, PersonaAssignment, PersonaChange
from personas.services import persona_create, persona_delete, persona_update
from segments.models import CustomerSegmentState
from segments.selectors import customer_segment_list
from segments.services import (
    dirty_drain,
    memberships_refresh,
    recompute_all,
    segment_create,
)
from tests.crm.factories import CustomerFactory

from .conftest import buy

pytestmark = pytest.mark.django_db

ACTIVE = Persona.Status.ACTIVE


def assigned() -> dict[int, str]:
    return dict(PersonaAssignment.objects.values_list("customer_id", "persona__slug"))


def test_largest_priority_wins_and_ties_go_to_the_older_persona():
    # Given three personas that all match a Utrecht customer
    customer = CustomerFactory(city="Utrecht")
    persona_create(name="Anna", query='city = "utrecht"', priority=1, status=ACTIVE)
    persona_create(name="Bert", query='city = "utrecht"', priority=5, status=ACTIVE)
    persona_create(name="Cees", query='city = "utrecht"', priority=5, status=ACTIVE)

    recompute_all()

    # Bert and Cees share the largest priority; Bert is older.
    assert assigned() == {customer.pk: "bert"}


def test_customer_matching_no_persona_has_none():
    CustomerFactory(city="Delft")
    persona_create(name="Anna", query='city = "utrecht"', status=ACTIVE)

    recompute_all()

    assert assigned() == {}


def test_draft_and_retired_personas_match_nobody():
    CustomerFactory(city="Utrecht")
    persona_create(name="Draft", query='city = "utrecht"')
    retired = persona_create(name="Old", query='city = "utrecht"', status=ACTIVE)
    persona_update(persona=retired, status=Persona.Status.RETIRED)

    recompute_all()

    assert assigned() == {}


def test_second_purchase_moves_customer_to_the_loyal_persona(store, products):
    # Given Joe (one order) and Sarah (repeat buyers, higher priority)
    customer = CustomerFactory()
    persona_create(name="Joe", query="orders >= 1", priority=1, status=ACTIVE)
    persona_create(name="Sarah", query="orders >= 2", priority=2, status=ACTIVE)
    buy(store, customer)
    dirty_drain()
    assert assigned() == {customer.pk: "joe"}

    # When the customer buys again
    receipt = buy(store, customer)
    dirty_drain()

    # Then the contact moved the customer from Joe to Sarah, with history
    assert assigned() == {customer.pk: "sarah"}
    change = PersonaChange.objects.filter(customer=customer).first()
    assert (change.from_persona.slug, change.to_persona.slug) == ("joe", "sarah")
    assert change.cause == "contact"
    assert change.contact.receipt_id == receipt.pk
    assignment = PersonaAssignment.objects.get(customer=customer)
    assert assignment.contact_id == change.contact_id


def test_receipt_reassigns_through_the_on_commit_drain(
    store, products, eager_celery, django_capture_on_commit_callbacks
):
    customer = CustomerFactory()
    persona_create(name="Joe", query="orders >= 1", status=ACTIVE)

    with django_capture_on_commit_callbacks(execute=True):
        buy(store, customer)

    assert assigned() == {customer.pk: "joe"}


def test_whole_base_assignment_equals_incremental(store, products):
    # Given customers with various purchases and three overlapping personas
    customers = [CustomerFactory(city=city) for city in ("Utrecht", "Delft", "Gouda")]
    for count, customer in enumerate(customers):
        for _ in range(count):
            buy(store, customer, sku="SHOE-2")
    persona_create(name="Buyer", query="orders >= 1", priority=1, status=ACTIVE)
    persona_create(
        name="Delft", query='city = "delft" and orders >= 1', priority=3, status=ACTIVE
    )
    persona_create(name="Heavy", query="total_spent > 150", priority=2, status=ACTIVE)

    memberships_refresh(customer_ids=[c.pk for c in customers])
    incremental = assigned()
    PersonaAssignment.objects.all().delete()
    CustomerSegmentState.objects.all().delete()
    recompute_all()

    assert (
        assigned()
        == incremental
        == {
            customers[1].pk: "delft",
            customers[2].pk: "heavy",
        }
    )


def test_recompute_after_a_priority_change_moves_customers_and_keeps_history():
    customer = CustomerFactory(city="Utrecht")
    anna = persona_create(
        name="Anna", query='city = "utrecht"', priority=2, status=ACTIVE
    )
    bert = persona_create(
        name="Bert", query='city = "utrecht"', priority=1, status=ACTIVE
    )
    recompute_all()
    assert assigned() == {customer.pk: "anna"}

    persona_update(persona=bert, priority=3)
    assert recompute_all() == 1

    assert assigned() == {customer.pk: "bert"}
    change = PersonaChange.objects.filter(customer=customer).first()
    assert (change.from_persona, change.to_persona, change.cause) == (
        anna,
        bert,
        "recompute",
    )
    # A second pass changes nothing.
    assert recompute_all() == 0


def test_deleting_a_persona_moves_its_customers_to_the_next_one():
    customer = CustomerFactory(city="Utrecht")
    persona_create(name="Anna", query='city = "utrecht"', priority=1, status=ACTIVE)
    bert = persona_create(
        name="Bert", query='city = "utrecht"', priority=2, status=ACTIVE
    )
    recompute_all()

    persona_delete(persona=bert)
    recompute_all()

    assert assigned() == {customer.pk: "anna"}


def test_segment_with_a_persona_condition_sees_the_persona_of_the_same_pass(
    store, products
):
    # Given a segment of Sarah's customers and a customer about to become Sarah
    customer = CustomerFactory()
    persona_create(name="Joe", query="orders >= 1", priority=1, status=ACTIVE)
    persona_create(name="Sarah", query="orders >= 2", priority=2, status=ACTIVE)
    sarahs = segment_create(name="Sarahs", query='persona = "sarah"')
    not_joe = segment_create(name="Not Joe", query='persona != "joe"')
    anyone = segment_create(name="Anyone", query="persona is set")
    buy(store, customer)
    dirty_drain()
    members = {s.slug for s in customer_segment_list(customer=customer)}
    assert members == {"anyone"}

    # When one receipt makes the customer Sarah
    buy(store, customer)
    dirty_drain()

    # Then the segment saw the new persona in that same evaluation
    members = {s.slug for s in customer_segment_list(customer=customer)}
    assert members == {sarahs.slug, not_joe.slug, anyone.slug}
    assert assigned() == {customer.pk: "sarah"}


def test_persona_rule_cannot_use_personas():
    with pytest.raises(ValidationError, match="cannot depend on personas"):
        persona_create(name="Loop", query='persona = "joe"')


def test_persona_rule_cannot_use_a_segment_that_uses_personas():
    # A segment may name only a persona that exists.
    persona_create(name="Joe", slug="joe", query="orders >= 1", status=ACTIVE)
    segment_create(name="Joes", query='persona = "joe"')
    with pytest.raises(ValidationError, match="uses the persona field"):
        persona_create(name="Loop", query='segment in ("joes")')


def test_time_based_persona_rule_sets_the_next_check(store, products):
    customer = CustomerFactory()
    persona_create(name="Lapsed", query="last_purchase before 90 days", status=ACTIVE)
    receipt = buy(store, customer, days_ago=10)
    dirty_drain()

    state = CustomerSegmentState.objects.get(customer=customer)
    assert state.next_check_at is not None
    assert abs((state.next_check_at - receipt.purchased_at).days - 90) <= 1
