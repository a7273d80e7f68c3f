"""The API clients per role come from tests/api; campaigns add nothing of their own
beyond a marketer user for the services."""

import pytest

from tests.api.conftest import (  # noqa: F401 - fixtures, used by name
    _generous_throttle,
    api_admin,
    marketer,
    nobody,
    reader,
    till,
)
from tests.crm.factories import UserFactory


@pytest.fixture
def user(db):
    return UserFactory(username="sam-marketer")
