"""POST/DELETE /api/v1/customers/{id}/push-tokens/: the app registers devices."""

from urllib.parse import quote

import pytest

from crm.models import PushToken
from crm.roles import API_ADMINS, API_READ_ONLY, API_TILLS, MARKETERS
from tests.api.conftest import errors_of, role_user, token_client
from tests.crm.factories import CustomerFactory


@pytest.fixture(autouse=True)
def _generous_throttle(settings):
    settings.LOYALIST_API_THROTTLE_RATES = {"default": "100000/min"}


@pytest.fixture
def till(store):
    return token_client(role_user("till-ams", API_TILLS, store=store))


@pytest.fixture
def shopper(store):
    return CustomerFactory(home_store=store)


def url(customer) -> str:
    return f"/api/v1/customers/{customer.pk}/push-tokens/"


def test_a_till_registers_a_token_and_registering_again_is_idempotent(till, shopper):
    body = {"token": "fcm:device-1", "platform": "android"}

    first = till.post(url(shopper), body, format="json")
    again = till.post(url(shopper), body, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["token"] == "fcm:device-1"
    assert first.json()["customer"] == shopper.pk
    assert first.json()["revoked_at"] is None
    assert PushToken.objects.filter(customer=shopper).count() == 1


def test_a_token_another_customer_held_moves_to_this_one(till, shopper, store):
    previous = CustomerFactory(home_store=store)
    till.post(url(previous), {"token": "t1", "platform": "ios"}, format="json")

    response = till.post(
        url(shopper), {"token": "t1", "platform": "ios"}, format="json"
    )

    assert response.status_code == 200
    assert PushToken.objects.get(token="t1").customer == shopper


def test_delete_revokes_and_is_harmless_twice(till, shopper):
    token = "https://push.example/abc/def?x=1"
    till.post(url(shopper), {"token": token, "platform": "web"}, format="json")

    first = till.delete(f"{url(shopper)}?token={quote(token, safe='')}")
    again = till.delete(f"{url(shopper)}?token={quote(token, safe='')}")

    assert (first.status_code, again.status_code) == (204, 204)
    assert PushToken.objects.get().revoked_at is not None


def test_deleting_a_token_the_customer_never_held_is_404(till, shopper, store):
    other = CustomerFactory(home_store=store)
    till.post(url(other), {"token": "theirs", "platform": "ios"}, format="json")

    assert till.delete(f"{url(shopper)}?token=theirs").status_code == 404
    assert till.delete(url(shopper)).status_code == 404
    assert till.delete(f"{url(shopper)}?token=a%00b").status_code == 404
    assert PushToken.objects.get().revoked_at is None


def test_a_nul_in_a_token_is_400_not_a_database_error(till, shopper):
    response = till.post(
        url(shopper), {"token": "a\x00b", "platform": "ios"}, format="json"
    )

    assert response.status_code == 400
    assert errors_of(response) == [("token", "null_characters_not_allowed")]


def test_invalid_input_is_400_in_the_error_format(till, shopper):
    response = till.post(
        url(shopper), {"token": "", "platform": "nokia"}, format="json"
    )

    assert response.status_code == 400
    assert sorted(errors_of(response)) == [
        ("platform", "invalid_choice"),
        ("token", "blank"),
    ]


def test_an_erased_customer_cannot_get_a_token(till, shopper):
    from crm.services import customer_erase

    customer_erase(customer=shopper)

    response = till.post(url(shopper), {"token": "t", "platform": "ios"}, format="json")

    assert response.status_code == 400
    assert errors_of(response) == [("customer", "customer_erased")]


def test_a_till_cannot_reach_customers_its_store_does_not_serve(till, other_store):
    elsewhere = CustomerFactory(home_store=other_store)

    response = till.post(
        url(elsewhere), {"token": "t", "platform": "ios"}, format="json"
    )

    assert response.status_code == 404
    assert not PushToken.objects.exists()


@pytest.mark.parametrize(
    ("group", "expected"),
    [(API_ADMINS, 201), (API_READ_ONLY, 403), (MARKETERS, 403), (None, 403)],
)
def test_roles(db, shopper, group, expected):
    client = token_client(role_user(f"user-{group}", group))

    response = client.post(
        url(shopper), {"token": "t", "platform": "ios"}, format="json"
    )

    assert response.status_code == expected
    assert client.delete(f"{url(shopper)}?token=t").status_code == (
        204 if expected == 201 else 403
    )


def test_the_schema_documents_both_methods(db, admin_user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(admin_user)
    schema = client.get(
        "/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json"
    ).json()

    operations = schema["paths"]["/api/v1/customers/{id}/push-tokens/"]
    assert set(operations) >= {"post", "delete"}
    assert [p["name"] for p in operations["delete"]["parameters"]] == ["id", "token"]
