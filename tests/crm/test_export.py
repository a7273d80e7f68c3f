"""A customer's data export (their access request): complete, exact, bounded."""

import json

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.admin.customers import EXPORT_MAX
from crm.selectors import customer_data_export
from crm.services import LineInput, customer_erase, receipt_record
from segments.services.engine import recompute_all
from tests.crm.factories import CustomerFactory
from tests.segments.factories import SegmentFactory

from .test_admin import admin_url, messages_of, staff_with

pytestmark = pytest.mark.django_db


def test_the_export_holds_what_the_customer_gave_did_and_what_was_made_of_it(joe):
    SegmentFactory(slug="buyers")
    recompute_all()

    export = customer_data_export(customer=joe)

    profile = export["customer"]
    assert (profile["email"], profile["phone"], profile["city"]) == (
        "joe.bloggs@example.com",
        "+31612345678",
        "Utrecht",
    )
    assert profile["tags"] == ["running"]
    assert profile["home_store"] == "ams"
    assert [(c["channel"], c["status"]) for c in export["consents"]] == [
        ("email", "granted"),
        ("sms", "granted"),
    ]
    (receipt,) = export["receipts"]
    assert receipt["store"] == "ams"
    assert receipt["total"] == "59.95"
    assert [(line["sku"], line["quantity"]) for line in receipt["lines"]] == [
        ("SHOE-1", 1)
    ]
    (card,) = export["loyalty_cards"]
    assert [(t["kind"], t["points"]) for t in card["transactions"]] == [("earned", 59)]
    assert card["transactions"][0]["receipt"] == receipt["number"]
    kinds = [contact["kind"] for contact in export["contacts"]]
    assert "purchase" in kinds
    assert "web_visit" in kinds
    assert export["statistics"]["orders"] == 1
    assert "buyers" in export["segments"]
    assert export["persona"] is None
    # Plain JSON: amounts as exact strings, times in ISO 8601.
    assert json.loads(json.dumps(export)) == export


def test_the_export_takes_the_same_queries_however_long_the_history(
    joe, store, django_assert_num_queries
):
    with CaptureQueriesContext(connection) as short:
        customer_data_export(customer=joe)
    for _sale in range(5):
        receipt_record(
            store=store,
            customer=joe,
            payment_method="cash",
            lines=[LineInput("BAG-1", 1), LineInput("SHOE-2", 1)],
        )

    with django_assert_num_queries(len(short.captured_queries)):
        export = customer_data_export(customer=joe)

    assert len(export["receipts"]) == 6


def test_an_erased_customers_export_shows_the_anonymous_record(joe):
    customer_erase(customer=joe)

    export = customer_data_export(customer=joe)

    assert export["customer"]["email"] is None
    assert export["customer"]["erased_at"] is not None
    assert all(contact["payload"] == {} for contact in export["contacts"])


def test_staff_who_may_view_customers_download_the_export(client, joe):
    staff_with(client, "view_customer")

    response = client.post(
        admin_url("customer", "changelist"),
        {"action": "export", ACTION_CHECKBOX_NAME: [joe.pk]},
    )

    assert response.status_code == 200
    assert response["Content-Disposition"] == (
        f'attachment; filename="customer-{joe.pk}.json"'
    )
    assert json.loads(response.content)["customer"]["id"] == joe.pk


def test_more_customers_than_one_download_holds_are_refused_not_cut_short(
    admin_client,
):
    customers = CustomerFactory.create_batch(EXPORT_MAX + 1)

    response = admin_client.post(
        admin_url("customer", "changelist"),
        {"action": "export", ACTION_CHECKBOX_NAME: [c.pk for c in customers]},
    )

    assert response.status_code == 302
    assert any(f"at most {EXPORT_MAX} customers" in m for m in messages_of(response))
