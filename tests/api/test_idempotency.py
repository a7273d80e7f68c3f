import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from crm.api.idempotency import idempotency_records_purge
from crm.api.models import IdempotencyRecord
from crm.models import (
    Contact,
    Customer,
    CustomerStats,
    LoyaltyTransaction,
    Product,
    Receipt,
    ReceiptLine,
)
from tests.crm.factories import CustomerFactory

from .conftest import errors_of
from .test_receipts import URL, sale


def table_counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (Receipt, ReceiptLine, Contact, LoyaltyTransaction, Customer)
    )


def test_same_key_and_body_replays_the_first_response(till, products):
    first = till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="sale-1")
    again = till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="sale-1")

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Receipt.objects.count() == 1


def test_same_key_with_another_body_is_refused(till, products):
    till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="sale-2")

    response = till.post(
        URL, sale(payment_method="cash"), format="json", HTTP_IDEMPOTENCY_KEY="sale-2"
    )

    assert response.status_code == 422
    assert errors_of(response) == [(None, "idempotency_key_reused")]
    assert Receipt.objects.count() == 1


def test_keys_belong_to_their_token(till, api_admin, products):
    till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="shared")
    response = api_admin.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response
    assert Receipt.objects.count() == 2


def test_keys_older_than_the_keep_period_are_purged(till, products, settings):
    settings.LOYALIST_IDEMPOTENCY_KEEP_DAYS = 7
    till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="old")
    till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="recent")
    IdempotencyRecord.objects.filter(key="old").update(
        created_at=timezone.now() - timedelta(days=8)
    )

    assert idempotency_records_purge() == 1

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["recent"]
    replay = till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="recent")
    assert replay["Idempotent-Replayed"] == "true"
    assert Receipt.objects.count() == 2


def test_a_refused_request_can_be_corrected_under_the_same_key(till, products):
    bad = till.post(
        URL,
        sale(lines=[{"sku": "X", "quantity": 1}]),
        format="json",
        HTTP_IDEMPOTENCY_KEY="sale-3",
    )
    good = till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="sale-3")

    assert bad.status_code == 400
    assert good.status_code == 201


def test_a_retry_rolls_its_own_work_back(till, products, store):
    customer = CustomerFactory(home_store=store)
    body = sale(customer=customer.pk)
    first = till.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="sale-4")
    assert first.status_code == 201, first.json()
    stock = dict(Product.objects.values_list("sku", "stock_level"))
    recorded = table_counts()

    again = till.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="sale-4")

    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert table_counts() == recorded
    assert dict(Product.objects.values_list("sku", "stock_level")) == stock
    assert CustomerStats.objects.get(customer=customer).orders == 1
    assert IdempotencyRecord.objects.count() == 1


@pytest.mark.parametrize(
    "retried",
    [
        # 100.00 of the 104.95 paid with points; the 4 points earned back do
        # not cover the retry's redemption.
        pytest.param({"points_redeemed": 10_000}, id="points-already-spent"),
        pytest.param({"number": "TILL-1-0001"}, id="till-number-already-taken"),
    ],
)
def test_a_retry_refused_because_of_the_first_answers_with_the_first(
    till, products, card, retried
):
    card.points = 10_000
    card.save(update_fields=["points"])
    body = sale(loyalty_card=card.number, **retried)
    first = till.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="sale-5")
    assert first.status_code == 201, first.json()

    again = till.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="sale-5")

    assert again.status_code == 201, again.json()
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert Receipt.objects.count() == 1
    assert LoyaltyTransaction.objects.filter(card=card).count() == (
        2 if "points_redeemed" in retried else 1
    )


def test_contacts_honour_the_key_too(till, customer, store):
    body = {"customer_email": customer.email, "kind": "web_visit", "channel": "online"}

    first = till.post(
        "/api/v1/contacts/", body, format="json", HTTP_IDEMPOTENCY_KEY="c1"
    )
    again = till.post(
        "/api/v1/contacts/", body, format="json", HTTP_IDEMPOTENCY_KEY="c1"
    )
    bulk = {"contacts": [body]}
    till.post("/api/v1/contacts/bulk/", bulk, format="json", HTTP_IDEMPOTENCY_KEY="b1")
    till.post("/api/v1/contacts/bulk/", bulk, format="json", HTTP_IDEMPOTENCY_KEY="b1")

    assert first.json() == again.json()
    assert Contact.objects.count() == 2


def test_an_overlong_key_is_400(till, products):
    response = till.post(URL, sale(), format="json", HTTP_IDEMPOTENCY_KEY="k" * 300)

    assert errors_of(response) == [("Idempotency-Key", "invalid_idempotency_key")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="needs concurrent writers"
)
def test_concurrent_retries_record_one_sale_and_register_one_customer(store, products):
    from .conftest import role_user, token_client

    till = token_client(role_user("till-race", "API tills", store=store))
    body = sale(customer_email="racer@example.com")
    barrier = threading.Barrier(4)
    responses = []

    def post():
        barrier.wait()
        try:
            responses.append(
                till.post(URL, body, format="json", HTTP_IDEMPOTENCY_KEY="race")
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [r.status_code for r in responses] == [201] * 4
    assert len({r.json()["id"] for r in responses}) == 1
    assert Receipt.objects.count() == 1
    assert Customer.objects.filter(email="racer@example.com").count() == 1
