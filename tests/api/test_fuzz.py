"""Schemathesis drives every operation of the published schema with generated
input: no response may be a server error or contradict the schema."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from config.wsgi import application
from crm.roles import API_ADMINS, API_TILLS
from crm.services import contact_record
from tests.crm.factories import CustomerFactory, LoyaltyCardFactory
from tests.segments.factories import SegmentFactory, membership_create

from .conftest import role_user, token_client

EXAMPLES_PER_OPERATION = 10


@pytest.fixture
def api_schema(db):
    # Called through WSGI, each request would close the test's database
    # connection when it finishes; the test client keeps it open the same way.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/schema/", application)
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture(params=[API_ADMINS, API_TILLS])
def token(request, db, store, products):
    """A token of an admin or a till, and a little of everything to find."""
    customer = CustomerFactory(home_store=store)
    LoyaltyCardFactory(customer=customer)
    membership_create(customer=customer, segment=SegmentFactory(slug="vip"))
    contact_record(customer=customer, kind="web_visit", channel="online", store=store)
    staff_store = store if request.param == API_TILLS else None
    client = token_client(role_user("fuzzer", request.param, store=staff_store))
    return client._credentials["HTTP_AUTHORIZATION"]


@pytest.mark.slow
def test_no_input_gives_a_server_error_or_breaks_the_schema(api_schema, token):
    # Each operation gets its own bounded Hypothesis run; failures are gathered
    # so one run reports every broken operation.
    failures = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case):
            response = case.call(headers={"Authorization": token})
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        try:
            run()
        except Exception as exc:
            failures.append(f"{operation.verbose_name}: {exc}")
    assert not failures, "\n\n".join(failures)
