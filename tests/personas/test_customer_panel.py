"""The persona panel of the customer's page: the persona and why, for marketers."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from personas.models import Persona
from personas.services import persona_create
from segments.services import segment_create
from tests.crm.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_marketer_sees_the_persona_and_the_rule_that_gave_it(marketer_client):
    persona_create(
        name="Bram", query='city = "delft"', status=Persona.Status.ACTIVE, priority=5
    )
    persona_create(
        name="Joe", query='city = "utrecht"', status=Persona.Status.ACTIVE, priority=1
    )
    customer = CustomerFactory(city="Utrecht")

    response = marketer_client.get(
        reverse("admin:crm_customer_change", args=[customer.pk])
    )

    content = response.content.decode()
    assert 'id="customer-persona-group"' in content
    chosen = content.split('class="persona-chosen"')[1].split("</p>")[0]
    assert "Joe" in chosen
    assert "none of the rules of the" in content or "ranked above it" in content
    assert "city = &quot;utrecht&quot;" in content


def page_queries(client, url: str) -> int:

    client.get(url)  # warm the content-type and permission caches
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_the_customer_page_costs_the_same_queries_for_one_persona_or_five(
    marketer_client,
):

    customer = CustomerFactory(city="Utrecht")
    url = reverse("admin:crm_customer_change", args=[customer.pk])
    persona_create(
        name="P0", query='city = "utrecht"', status=Persona.Status.ACTIVE, priority=1
    )
    segment_create(name="S0", query='city = "utrecht"')
    one = page_queries(marketer_client, url)
    for n in range(1, 5):
        persona_create(
            name=f"P{n}",
            query=f"orders >= {n}",
            status=Persona.Status.ACTIVE,
            priority=n + 1,
        )
        segment_create(name=f"S{n}", query=f"orders >= {n}")

    assert page_queries(marketer_client, url) == one
