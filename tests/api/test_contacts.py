import math

from django.db import connection

from crm.models import Contact
from segments.models import DirtyCustomer
from tests.crm.factories import CustomerFactory

from .conftest import errors_of

URL = "/api/v1/contacts/"


def test_till_records_a_contact_at_its_store(till, store, customer):
    response = till.post(
        URL,
        {
            "customer_email": "joe@example.com",
            "kind": "web_visit",
            "channel": "online",
            "payload": {"page": "/shoes"},
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    contact = Contact.objects.get(pk=response.json()["id"])
    assert contact.store == store
    assert contact.payload == {"page": "/shoes"}
    # The segment engine hears about it in the same transaction.
    assert DirtyCustomer.objects.filter(customer=customer).exists()


def test_purchases_are_recorded_through_receipts_only(till, customer):
    response = till.post(
        URL,
        {"customer_email": "joe@example.com", "kind": "purchase", "channel": "store"},
        format="json",
    )

    assert errors_of(response) == [("kind", "invalid_choice")]


def test_contact_needs_exactly_one_customer_reference(till, customer):
    neither = till.post(URL, {"kind": "web_visit", "channel": "online"}, format="json")
    unknown = till.post(
        URL,
        {"customer_email": "who@example.com", "kind": "web_visit", "channel": "online"},
        format="json",
    )

    assert errors_of(neither) == [("customer", "customer_required")]
    assert errors_of(unknown) == [("customer_email", "unknown_customer")]


def test_future_contacts_and_huge_payloads_are_refused(till, customer):
    response = till.post(
        URL,
        {
            "customer_email": "joe@example.com",
            "kind": "web_visit",
            "channel": "online",
            "occurred_at": "2999-01-01T00:00:00Z",
            "payload": {"blob": "x" * 20000},
        },
        format="json",
    )

    assert sorted(errors_of(response)) == [
        ("occurred_at", "future"),
        ("payload", "payload_too_large"),
    ]


def test_bulk_stores_valid_items_and_reports_each_invalid_one(
    till, store, customer, django_assert_max_num_queries
):
    second = CustomerFactory(home_store=store)
    items = [
        {"customer_email": "joe@example.com", "kind": "email_open", "channel": "email"},
        {
            "customer_email": "nobody@example.com",
            "kind": "email_open",
            "channel": "email",
        },
        {"customer": second.pk, "kind": "nonsense", "channel": "email"},
        {"customer": second.pk, "kind": "email_click", "channel": "email"},
        "not an object",
        {
            "customer": second.pk,
            "kind": "web_visit",
            "channel": "online",
            "store": "utr",
        },
    ]

    response = till.post(f"{URL}bulk/", {"contacts": items}, format="json")

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["created"], body["invalid"]) == (2, 4)
    assert [r["status"] for r in body["results"]] == [
        "created",
        "invalid",
        "invalid",
        "created",
        "invalid",
        "invalid",
    ]
    assert body["results"][1]["errors"][0]["code"] == "unknown_customer"
    assert body["results"][2]["errors"][0]["field"] == "kind"
    assert body["results"][5]["errors"][0]["code"] in (
        "unknown_store",
        "store_not_allowed",
    )
    assert Contact.objects.count() == 2


def test_bulk_finds_customers_by_email_whatever_the_capitals(api_admin):
    stored = CustomerFactory(email="Mixed.Case@Example.com")

    response = api_admin.post(
        f"{URL}bulk/",
        {
            "contacts": [
                {
                    "customer_email": " mixed.case@EXAMPLE.com",
                    "kind": "web_visit",
                    "channel": "online",
                }
            ]
        },
        format="json",
    )

    assert response.json()["created"] == 1, response.json()
    assert Contact.objects.get().customer == stored


def test_bulk_takes_at_most_1000(till):
    items = [{"customer": 1, "kind": "web_visit", "channel": "online"}] * 1001

    response = till.post(f"{URL}bulk/", {"contacts": items}, format="json")

    assert response.status_code == 400
    assert errors_of(response) == [("contacts", "max_length")]


def test_bulk_of_1000_is_quick_in_queries(
    api_admin, store, django_assert_max_num_queries
):
    customers = [CustomerFactory() for _ in range(10)]
    items = [
        {"customer": customers[i % 10].pk, "kind": "web_visit", "channel": "online"}
        for i in range(1000)
    ]

    # Token, groups, transaction; customers, stores; the contacts' insert, the
    # last-contact update, the engine's dirty marks (with and without a contact):
    # none per contact. The insert is one statement per batch the database takes
    # (SQLite caps the parameters of one statement).
    fields = [f for f in Contact._meta.concrete_fields if not f.primary_key]
    inserts = math.ceil(
        1000 / connection.ops.bulk_batch_size(fields, [Contact()] * 1000)
    )
    with django_assert_max_num_queries(11 + inserts):
        response = api_admin.post(f"{URL}bulk/", {"contacts": items}, format="json")

    assert response.json()["created"] == 1000


def test_contact_list_is_scoped_to_the_tills_stores(
    till, other_till, store, other_store
):
    here = CustomerFactory(home_store=store)
    there = CustomerFactory(home_store=other_store)
    till.post(
        URL,
        {"customer": here.pk, "kind": "web_visit", "channel": "online"},
        format="json",
    )
    other_till.post(
        URL,
        {"customer": there.pk, "kind": "web_visit", "channel": "online"},
        format="json",
    )

    listed = till.get(URL).json()["results"]

    assert [c["customer"] for c in listed] == [here.pk]
    assert till.get(URL, {"kind": ["web_visit", "email_open"]}).status_code == 200
