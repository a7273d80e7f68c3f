"""crm.rows: the sale's key lookups and inserts give what the ORM gives."""

import pytest
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import Contact, Customer, Product, Store
from crm.rows import row_get, row_insert, rows_get
from tests.crm.factories import CustomerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def as_dicts(instances) -> list[dict]:
    return sorted((model_to_dict(i) for i in instances), key=lambda d: d["id"])


def test_row_get_returns_what_the_orm_returns(store):
    customer = CustomerFactory(phone="+31612345678", home_store=store)
    found = row_get(Store, "code", "ams")
    by_pk = row_get(Customer, "pk", customer.pk)

    assert model_to_dict(found) == model_to_dict(Store.objects.get(code="ams"))
    assert model_to_dict(by_pk) == model_to_dict(Customer.objects.get(pk=customer.pk))
    # Loaded as a queryset loads: saved, from this database, nothing deferred.
    assert not by_pk._state.adding
    assert by_pk._state.db == connection.alias
    assert by_pk.get_deferred_fields() == set()
    # A field's own conversion applies (the phone number's type).
    assert type(by_pk.phone) is type(customer.phone)
    assert by_pk.phone.as_e164 == "+31612345678"


def test_rows_get_returns_each_match_once_and_skips_unknown_values(products):
    found = rows_get(Product, "sku", {"SHOE-1", "BAG-1", "NOPE"})

    assert as_dicts(found) == as_dicts(
        Product.objects.filter(sku__in=["SHOE-1", "BAG-1"])
    )


def test_a_missing_or_impossible_key_finds_nothing_without_asking(store):
    assert row_get(Store, "code", "zzz") is None
    assert rows_get(Product, "sku", []) == []
    with CaptureQueriesContext(connection) as queries:
        # Beyond a bigint: PostgreSQL would refuse the comparison itself.
        assert row_get(Customer, "pk", 2**63) is None
        assert rows_get(Customer, "pk", [-(2**63) - 1]) == []
    assert len(queries) == 0


def test_row_insert_stores_what_save_stores(store):
    customer = CustomerFactory()
    when = timezone.now()
    inserted = Contact(
        customer=customer,
        kind=Contact.Kind.PURCHASE,
        channel="store",
        occurred_at=when,
        store=store,
        payload={"note": "row_insert"},
    )
    saved = Contact(
        customer=customer,
        kind=Contact.Kind.PURCHASE,
        channel="store",
        occurred_at=when,
        store=store,
        payload={"note": "row_insert"},
    )

    row_insert(inserted)
    saved.save()

    assert inserted.pk is not None
    assert not inserted._state.adding
    stored = {
        c.pk: {**model_to_dict(c), "id": None, "created_at": None}
        for c in Contact.objects.filter(pk__in=[inserted.pk, saved.pk])
    }
    assert stored[inserted.pk] == stored[saved.pk]
    assert stored[inserted.pk]["payload"] == {"note": "row_insert"}


def test_a_null_key_finds_nothing_without_asking(store):
    with CaptureQueriesContext(connection) as queries:
        assert row_get(Customer, "pk", None) is None
    assert len(queries) == 0
