from datetime import timedelta

from django.utils import timezone
from rest_framework.test import APIClient

from crm.models import Channel, Consent, Customer
from crm.services import consent_record, contact_record
from tests.crm.factories import CustomerFactory
from tests.segments.factories import SegmentFactory, membership_create

from .conftest import errors_of

URL = "/api/v1/customers/"


def test_detail_has_stats_segments_persona_and_current_consents(reader, customer):
    segment = SegmentFactory(slug="repeat-buyers")
    membership_create(segment=segment, customer=customer)
    consent_record(
        customer=customer,
        channel=Channel.EMAIL,
        granted=True,
        source="api",
        wording="Yes",
    )
    consent_record(
        customer=customer,
        channel=Channel.EMAIL,
        granted=False,
        source="api",
        wording="No",
        recorded_at=timezone.now() + timedelta(seconds=1),
    )

    body = reader.get(f"{URL}{customer.pk}/").json()

    assert body["email"] == "joe@example.com"
    assert body["stats"]["orders"] == 0
    assert body["segments"] == ["repeat-buyers"]
    assert body["persona"] is None
    assert body["consents"]["email"]["status"] == "withdrawn"
    assert body["consents"]["sms"] is None


def test_list_query_count_is_pinned(reader, django_assert_max_num_queries):
    for _ in range(20):
        customer = CustomerFactory()
        membership_create(customer=customer)
        consent_record(
            customer=customer, channel="email", granted=True, source="api", wording="y"
        )

    with django_assert_max_num_queries(8):
        response = reader.get(URL)

    assert len(response.json()["results"]) == 20


def test_filters_email_phone_city_segment_and_created_after(reader):
    old = CustomerFactory(email="Old@Example.com", city="Utrecht")
    Customer.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=30)
    )
    new = CustomerFactory(city="Amsterdam", phone="+31612345678")
    membership_create(customer=new, segment=SegmentFactory(slug="vip"))

    def ids(**params):
        return [row["id"] for row in reader.get(URL, params).json()["results"]]

    assert ids(email="old@example.COM") == [old.pk]
    assert ids(phone="06 12345678") == [new.pk]
    assert ids(phone="not a phone") == []
    assert ids(city="amsterdam") == [new.pk]
    assert ids(segment="vip") == [new.pk]
    assert ids(created_after=(timezone.now() - timedelta(days=1)).isoformat()) == [
        new.pk
    ]


def test_till_reads_only_the_customers_its_store_serves(
    till, store, other_store, products
):
    home = CustomerFactory(home_store=store)
    bought_here = CustomerFactory()
    contacted_here = CustomerFactory()
    elsewhere = CustomerFactory(home_store=other_store)
    till.post(
        "/api/v1/receipts/",
        {
            "store": "ams",
            "customer_email": bought_here.email,
            "lines": [{"sku": "SHOE-1", "quantity": 1}],
        },
        format="json",
    )
    contact_record(
        customer=contacted_here, kind="web_visit", channel="online", store=store
    )

    listed = {row["id"] for row in till.get(URL).json()["results"]}

    assert listed == {home.pk, bought_here.pk, contacted_here.pk}
    assert till.get(f"{URL}{elsewhere.pk}/").status_code == 404
    assert till.get(f"{URL}{elsewhere.pk}/receipts/").status_code == 404
    assert till.get(f"{URL}{home.pk}/").status_code == 200


def test_till_registers_customers_at_its_own_store(till, store, other_store):
    response = till.post(
        URL, {"email": "Lisa@Example.com", "first_name": "Lisa"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["home_store"] == "ams"
    assert response.json()["email"] == "lisa@example.com"
    assert response.json()["source"] == "api"
    elsewhere = till.post(
        URL, {"email": "x@example.com", "home_store": "utr"}, format="json"
    )
    assert errors_of(elsewhere) == [("home_store", "store_not_allowed")]


def test_duplicate_email_is_a_field_error(api_admin, customer):
    response = api_admin.post(URL, {"email": "JOE@example.com"}, format="json")

    assert response.status_code == 400
    assert errors_of(response) == [("email", "email_taken")]


def test_update_changes_fields_through_the_service(api_admin, customer):
    response = api_admin.patch(
        f"{URL}{customer.pk}/",
        {"city": "Leiden", "tags": ["Running", "Trail"]},
        format="json",
    )

    assert response.status_code == 200
    assert response.json()["city"] == "Leiden"
    assert response.json()["tags"] == ["running", "trail"]


def test_read_only_token_cannot_write_customers(reader, customer):
    assert (
        reader.post(URL, {"email": "a@example.com"}, format="json").status_code == 403
    )
    assert (
        reader.patch(f"{URL}{customer.pk}/", {"city": "X"}, format="json").status_code
        == 403
    )


def test_invalid_fields_are_400(api_admin):
    response = api_admin.post(
        URL,
        {"email": "nope", "service_effort": 11, "gender": "q", "phone": "12"},
        format="json",
    )

    assert response.status_code == 400
    assert {field for field, _code in errors_of(response)} == {
        "email",
        "service_effort",
        "gender",
        "phone",
    }


def test_consents_are_appended_and_listed(till, store):
    customer = CustomerFactory(home_store=store)

    response = till.post(
        f"{URL}{customer.pk}/consents/",
        {"channel": "sms", "granted": True, "wording": "Texts about offers"},
        format="json",
    )
    ledger = till.get(f"{URL}{customer.pk}/consents/").json()["results"]

    assert response.status_code == 201
    assert [entry["channel"] for entry in ledger] == ["sms"]
    assert Consent.objects.get().recorded_by == till.user
    blank = till.post(
        f"{URL}{customer.pk}/consents/",
        {"channel": "sms", "granted": True, "wording": "  "},
        format="json",
    )
    assert errors_of(blank) == [("wording", "blank")] or errors_of(blank) == [
        ("wording", "wording_required")
    ]


def test_customer_contacts_and_receipts_lists(reader, customer, store):
    contact_record(customer=customer, kind="web_visit", channel="online", store=store)

    contacts = reader.get(f"{URL}{customer.pk}/contacts/").json()["results"]
    receipts = reader.get(f"{URL}{customer.pk}/receipts/").json()["results"]

    assert [c["kind"] for c in contacts] == ["web_visit"]
    assert receipts == []


def test_explain_returns_json_ready_tree(reader, customer):
    SegmentFactory(
        slug="big-spenders",
        rules={"field": "total_spent", "op": "gte", "value": "100.00"},
    )

    response = reader.get(f"{URL}{customer.pk}/explain/", {"segment": "big-spenders"})

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["member"] is False
    assert body["explanation"]["result"] is False
    assert "EUR 100.00" in body["explanation"]["says"]
    assert reader.get(f"{URL}{customer.pk}/explain/").status_code == 400
    assert (
        reader.get(f"{URL}{customer.pk}/explain/", {"segment": "nope"}).status_code
        == 404
    )


def test_the_schema_documents_the_explanation_in_words(db):
    schema = (
        APIClient()
        .get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
        .json()
    )

    shape = schema["components"]["schemas"]["SegmentExplanation"]["properties"]
    assert set(shape) == {"customer", "segment", "member", "explanation"}
    assert "`says`" in shape["explanation"]["description"]
