"""API clients per role: each one a user with a token, as an integration has."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from crm.models import StaffMember
from crm.roles import API_ADMINS, API_READ_ONLY, API_TILLS, MARKETERS
from tests.crm.factories import UserFactory


def token_client(user) -> APIClient:
    client = APIClient()
    token, _created = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    client.user = user
    return client


def role_user(username: str, group: str | None, store=None):
    user = UserFactory(username=username)
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    if store is not None:
        StaffMember.objects.create(user=user, store=store)
    return user


@pytest.fixture(autouse=True)
def _generous_throttle(settings):
    # Throttling is tested on its own; elsewhere it must not interfere.
    settings.LOYALIST_API_THROTTLE_RATES = {"default": "100000/min"}


@pytest.fixture
def till(db, store):
    """The till of the Amsterdam store."""
    return token_client(role_user("till-ams", API_TILLS, store=store))


@pytest.fixture
def other_till(db, other_store):
    """The till of the Utrecht store."""
    return token_client(role_user("till-utr", API_TILLS, store=other_store))


@pytest.fixture
def reader(db):
    return token_client(role_user("reader", API_READ_ONLY))


@pytest.fixture
def marketer(db):
    return token_client(role_user("marketer", MARKETERS))


@pytest.fixture
def api_admin(db):
    return token_client(role_user("api-admin", API_ADMINS))


@pytest.fixture
def nobody(db):
    """Signed in, but with no API role."""
    return token_client(role_user("nobody", None))


def errors_of(response) -> list[tuple[str | None, str]]:
    """The (field, code) pairs of an error response."""
    return [(error["field"], error["code"]) for error in response.json()["errors"]]
