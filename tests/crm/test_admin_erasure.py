"""The admin's erasure action: confirmed, permission-bound, and final."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME

from crm.models import Customer
from tests.crm.factories import CustomerFactory

from .test_admin import admin_url, messages_of, staff_with

pytestmark = pytest.mark.django_db


def erase(client, customer, **extra):
    return client.post(
        admin_url("customer", "changelist"),
        {"action": "erase", ACTION_CHECKBOX_NAME: [customer.pk], **extra},
    )


def test_erasing_asks_for_confirmation_first(admin_client):
    customer = CustomerFactory(email="jo@example.com", first_name="Jo")

    page = erase(admin_client, customer)
    unconfirmed = erase(admin_client, customer, apply="1")

    assert page.status_code == unconfirmed.status_code == 200
    assert "Erase for good" in page.content.decode()
    assert unconfirmed.context["form"].errors["confirmed"]
    assert Customer.objects.get(pk=customer.pk).erased_at is None


def test_a_confirmed_erasure_erases_and_the_record_becomes_read_only(admin_client):
    customer = CustomerFactory(email="jo@example.com", first_name="Jo")

    done = erase(admin_client, customer, apply="1", confirmed="on")

    assert done.status_code == 302
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.email, stored.first_name) == (None, "")
    assert stored.erased_at is not None
    page = admin_client.get(admin_url("customer", "change", customer.pk))
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert "Erased the personal data of 1 customer(s)." in messages_of(done)


def test_staff_who_may_not_delete_customers_cannot_erase(client):
    staff_with(client, "view_customer", "change_customer")
    customer = CustomerFactory(email="jo@example.com")

    listing = client.get(admin_url("customer", "changelist"))
    response = erase(client, customer, apply="1", confirmed="on")

    model_admin = listing.context["cl"].model_admin
    assert "erase" not in model_admin.get_actions(listing.wsgi_request)
    assert response.status_code in (200, 302)
    assert Customer.objects.get(pk=customer.pk).erased_at is None
