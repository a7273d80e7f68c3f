"""A persona's customers as CSV: the admin action, the change page's link, the API."""

import csv
import io

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from crm.models import Channel, Consent, MemberExport
from crm.roles import CLERKS, MARKETERS, roles_sync
from personas.models import Persona, PersonaAssignment
from personas.services import persona_create
from tests.api.conftest import token_client
from tests.conftest import user_in_group
from tests.crm.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def roles():
    roles_sync()


@pytest.fixture
def persona():
    persona = persona_create(
        name="Sarah", query='city = "delft"', status=Persona.Status.ACTIVE
    )
    sarah = CustomerFactory(first_name="Sarah", phone="+31612345678", city="Delft")
    tom = CustomerFactory(first_name="Tom", phone="+31687654321", city="Delft")
    for customer in (sarah, tom):
        PersonaAssignment.objects.create(
            customer=customer, persona=persona, assigned_at=timezone.now()
        )
    Consent.objects.create(
        customer=tom,
        channel=Channel.SMS,
        status=Consent.Status.GRANTED,
        source=Consent.Source.STORE,
        wording="Texts, please",
    )
    return persona


def csv_rows(response) -> list[list[str]]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_marketer_exports_a_persona_from_the_admin_action(client, persona):
    marketer = user_in_group("marketer", MARKETERS, is_staff=True)
    client.force_login(marketer)

    response = client.post(
        reverse("admin:personas_persona_changelist"),
        {"action": "export_members_csv", ACTION_CHECKBOX_NAME: [persona.pk]},
    )

    rows = csv_rows(response)
    assert sorted((row[1], row[8]) for row in rows[1:]) == [
        ("Sarah", ""),
        ("Tom", "+31687654321"),
    ]
    log = MemberExport.objects.get()
    assert (log.exported_by, log.label, log.rows) == (marketer, str(persona), 2)
    assert log.content_type.model == "persona"


def test_the_persona_page_links_to_the_export(client, persona):
    client.force_login(user_in_group("marketer", MARKETERS, is_staff=True))
    export_url = reverse("admin:personas_persona_export", args=[persona.pk])

    page = client.get(reverse("admin:personas_persona_change", args=[persona.pk]))

    assert export_url in page.text
    assert len(csv_rows(client.get(export_url))) == 3


def test_marketer_exports_a_persona_over_the_api_and_a_clerk_may_not(persona):
    url = f"/api/v1/personas/{persona.slug}/members/export/"
    marketer = token_client(user_in_group("marketer-token", MARKETERS))
    clerk = token_client(user_in_group("clerk-token", CLERKS))

    allowed = marketer.get(url)
    refused = clerk.get(url)

    assert len(csv_rows(allowed)) == 3
    assert refused.status_code == 403
    assert MemberExport.objects.get().exported_by == marketer.user
