"""POST /customers/{id}/erase/ and GET /customers/{id}/export/: API admins only."""

import pytest

from crm.models import Customer
from tests.crm.factories import CustomerFactory

from .conftest import errors_of

pytestmark = pytest.mark.django_db

URL = "/api/v1/customers/{}/erase/"


@pytest.fixture
def shopper(store):
    return CustomerFactory(
        email="jo@example.com", first_name="Jo", city="Delft", home_store=store
    )


def test_an_api_admin_erases_a_customer_and_gets_the_anonymous_record(
    api_admin, shopper
):
    response = api_admin.post(URL.format(shopper.pk))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["id"] == shopper.pk
    assert body["erased_at"] is not None
    assert (body["email"], body["first_name"], body["city"]) == (None, "", "")
    again = api_admin.post(URL.format(shopper.pk))
    assert again.status_code == 200
    assert again.json()["erased_at"] == body["erased_at"]


def test_only_api_admins_may_erase(till, reader, marketer, shopper):
    for client in (till, reader, marketer):
        response = client.post(URL.format(shopper.pk))
        assert response.status_code == 403
        assert errors_of(response) == [(None, "permission_denied")]
    assert Customer.objects.get(pk=shopper.pk).erased_at is None


def test_an_erased_customer_cannot_be_changed_over_the_api(api_admin, shopper):
    api_admin.post(URL.format(shopper.pk))

    response = api_admin.patch(
        f"/api/v1/customers/{shopper.pk}/", {"first_name": "Jo"}, format="json"
    )

    assert response.status_code == 400
    assert errors_of(response) == [("customer", "customer_erased")]
    assert Customer.objects.get(pk=shopper.pk).first_name == ""


def test_erasing_an_unknown_customer_is_404(api_admin):
    assert api_admin.post(URL.format(999_999)).status_code == 404


def test_the_export_is_for_api_admins(api_admin, till, reader, marketer, shopper):
    url = f"/api/v1/customers/{shopper.pk}/export/"

    response = api_admin.get(url)

    assert response.status_code == 200
    assert response.json()["customer"]["email"] == "jo@example.com"
    assert response["Content-Disposition"] == (
        f'attachment; filename="customer-{shopper.pk}.json"'
    )
    for client in (till, reader, marketer):
        assert client.get(url).status_code == 403
