from decimal import Decimal

import pytest

from crm.models import Customer, LoyaltyCard, Product, Receipt
from tests.crm.factories import CustomerFactory, LoyaltyCardFactory

from .conftest import errors_of

URL = "/api/v1/receipts/"


def sale(**overrides):
    body = {
        "store": "ams",
        "channel": "store",
        "payment_method": "card",
        "lines": [
            {"sku": "SHOE-1", "quantity": 1, "unit_price": "59.95"},
            {"sku": "BAG-1", "quantity": 2, "unit_price": "24.50", "discount": "4.00"},
        ],
    }
    body.update(overrides)
    return body


def test_till_records_a_sale_and_gets_number_total_and_points(till, products, card):
    response = till.post(URL, sale(loyalty_card=card.number), format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["total"] == "104.95"
    assert body["points_earned"] == 104
    assert body["number"]
    assert body["store"] == "ams"
    assert body["customer"] == card.customer_id
    assert [line["sku"] for line in body["lines"]] == ["SHOE-1", "BAG-1"]
    receipt = Receipt.objects.get(pk=body["id"])
    assert receipt.clerk == till.user
    card.refresh_from_db()
    assert card.points == 104


def test_the_sale_response_is_the_receipt_as_a_read_shows_it(till, products, card):
    """The 201 (built by fields made once per class) matches a GET of the receipt,
    for each of several sales: no sale's values leak into the next response."""
    bodies = [
        till.post(URL, sale(loyalty_card=card.number), format="json").json(),
        till.post(
            URL,
            sale(payment_method="cash", lines=[{"sku": "BAG-1", "quantity": 3}]),
            format="json",
        ).json(),
    ]

    for body in bodies:
        read = till.get(f"{URL}{body['id']}/").json()
        assert body.pop("customer_created") is False
        assert body == read
    assert [b["payment_method"] for b in bodies] == ["card", "cash"]
    assert [len(b["lines"]) for b in bodies] == [2, 1]
    assert bodies[1]["loyalty_card"] is None


def test_customer_email_that_matches_nobody_registers_a_customer(till, products, store):
    response = till.post(
        URL, sale(customer_email="New.Shopper@Example.com"), format="json"
    )

    assert response.status_code == 201, response.json()
    customer = Customer.objects.get(email="new.shopper@example.com")
    assert response.json()["customer"] == customer.pk
    assert response.json()["customer_created"] is True
    assert customer.home_store == store


def test_customer_email_of_an_existing_customer_reuses_them(till, products, customer):
    response = till.post(URL, sale(customer_email="JOE@example.com"), format="json")

    assert response.status_code == 201
    assert response.json()["customer"] == customer.pk
    assert response.json()["customer_created"] is False


def test_unknown_sku_is_reported_on_its_line(till, products):
    body = sale(lines=[{"sku": "SHOE-1", "quantity": 1}, {"sku": "X", "quantity": 1}])

    response = till.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "errors": [
            {
                "field": "lines[1].sku",
                "code": "unknown_sku",
                "message": "No product with sku 'X'.",
            }
        ]
    }
    assert not Receipt.objects.exists()


def test_shape_errors_use_the_same_paths(till, products):
    body = sale(lines=[{"sku": "SHOE-1", "quantity": 0}], channel="fax")

    response = till.post(URL, body, format="json")

    assert response.status_code == 400
    assert sorted(errors_of(response)) == [
        ("channel", "invalid_choice"),
        ("lines[0].quantity", "min_value"),
    ]


def test_each_request_gets_only_its_own_shape_errors(till, products):
    """The input serializer's fields are shared by every request of a process."""
    bad_channel = till.post(URL, sale(channel="fax"), format="json")
    good = till.post(URL, sale(), format="json")
    bad_line = till.post(
        URL,
        sale(lines=[{"sku": "SHOE-1", "quantity": 1}, {"sku": "BAG-1"}]),
        format="json",
    )

    assert errors_of(bad_channel) == [("channel", "invalid_choice")]
    assert good.status_code == 201
    assert errors_of(bad_line) == [("lines[1].quantity", "required")]


def test_a_refused_sale_registers_nobody(till, products):
    body = sale(customer_email="ghost@example.com", lines=[{"sku": "X", "quantity": 1}])

    assert till.post(URL, body, format="json").status_code == 400
    assert not Customer.objects.filter(email="ghost@example.com").exists()


def test_till_cannot_record_for_another_store(till, products, other_store):
    response = till.post(URL, sale(store="utr"), format="json")

    assert response.status_code == 400
    assert errors_of(response) == [("store", "store_not_allowed")]


def test_till_cannot_attach_a_sale_to_a_customer_it_does_not_serve(
    till, products, customer
):
    response = till.post(URL, sale(customer=customer.pk), format="json")

    assert response.status_code == 400
    assert errors_of(response) == [("customer", "unknown_customer")]


def test_unknown_card_is_refused(till, products):
    response = till.post(URL, sale(loyalty_card="4111111111111111"), format="json")

    assert errors_of(response) == [("loyalty_card", "unknown_card")]


def test_total_that_does_not_match_the_lines_is_refused(till, products):
    response = till.post(URL, sale(total="1.00"), format="json")

    assert errors_of(response) == [("total", "total_mismatch")]


def test_read_only_and_marketing_tokens_cannot_record_sales(reader, marketer, products):
    for client in (reader, marketer):
        response = client.post(URL, sale(), format="json")
        assert response.status_code == 403
        assert errors_of(response) == [(None, "permission_denied")]


def test_void_reverses_points_and_is_scoped_to_the_till(
    till, other_till, products, card
):
    receipt_id = till.post(URL, sale(loyalty_card=card.number), format="json").json()[
        "id"
    ]

    assert (
        other_till.post(
            f"{URL}{receipt_id}/void/", {"reason": "x"}, format="json"
        ).status_code
        == 404
    )
    missing_reason = till.post(f"{URL}{receipt_id}/void/", {}, format="json")
    assert errors_of(missing_reason) == [("reason", "required")]
    response = till.post(
        f"{URL}{receipt_id}/void/", {"reason": "Wrong size"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "voided"
    card.refresh_from_db()
    assert card.points == 0


def test_receipt_list_is_scoped_filtered_and_pinned(
    till, other_till, reader, products, django_assert_max_num_queries
):
    for _ in range(3):
        till.post(URL, sale(), format="json")
    other_till.post(URL, sale(store="utr"), format="json")

    with django_assert_max_num_queries(6):
        response = till.get(URL)
    assert response.status_code == 200
    assert {r["store"] for r in response.json()["results"]} == {"ams"}
    assert len(response.json()["results"]) == 3

    everything = reader.get(URL, {"store": "utr"})
    assert [r["store"] for r in everything.json()["results"]] == ["utr"]


# The token with its user and store; the user's groups (roles); store, customer,
# products; the receipt, its lines, the stock taken; contact, dirty mark, two for
# statistics, webhook subscriptions; the store's next number and the receipt's
# number; the response kept under the idempotency key. No savepoint of the sale's
# own: the request's transaction ends with any error. In production that
# transaction adds BEGIN and COMMIT; here it is the test transaction's savepoint
# pair.
SALE_QUERIES = 16


def test_a_sale_takes_the_same_statements_however_many_products(
    till, products, store, django_assert_num_queries
):
    customer = CustomerFactory(home_store=store)
    lines = [
        {"sku": "SHOE-1", "quantity": 1},
        {"sku": "SHOE-2", "quantity": 2},
        {"sku": "BAG-1", "quantity": 1},
    ]
    for count, key in ((1, "one"), (3, "three")):
        with django_assert_num_queries(SALE_QUERIES + 2):
            response = till.post(
                URL,
                sale(customer=customer.pk, lines=lines[:count]),
                format="json",
                HTTP_IDEMPOTENCY_KEY=key,
            )
        assert response.status_code == 201, response.json()
        assert len(response.json()["lines"]) == count
    assert [p.stock_level for p in Product.objects.order_by("sku")] == [
        products["BAG-1"].stock_level - 1,
        products["SHOE-1"].stock_level - 2,
        products["SHOE-2"].stock_level - 2,
    ]


def test_other_till_cannot_read_a_receipt(till, other_till, products):
    receipt_id = till.post(URL, sale(), format="json").json()["id"]

    assert other_till.get(f"{URL}{receipt_id}/").status_code == 404
    assert till.get(f"{URL}{receipt_id}/").json()["id"] == receipt_id


def test_redeeming_more_points_than_the_card_holds_is_refused(till, products, card):
    response = till.post(
        URL, sale(loyalty_card=card.number, points_redeemed=500), format="json"
    )

    assert response.status_code == 400
    assert errors_of(response) == [("points_redeemed", "insufficient_points")]


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        {"store": None, "lines": None},
        {"store": "ams", "lines": [{"sku": None, "quantity": "many"}]},
        {"store": "ams", "lines": [{"sku": "SHOE-1", "quantity": 10**30}]},
        {
            "store": "ams",
            "lines": [{"sku": "SHOE-1", "quantity": 1}],
            "purchased_at": "2020-13-45",
        },
        {
            "store": "ams",
            "lines": [{"sku": "SHOE-1", "quantity": 1, "unit_price": "NaN"}],
        },
        {"store": "ams", "lines": [{"sku": "SHOE-1\x00", "quantity": 1}]},
    ],
)
def test_malformed_bodies_are_400_not_500(till, products, body):
    response = till.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"]


def test_non_json_bodies_are_refused(till, products):
    response = till.post(
        URL, "store=ams", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert errors_of(response) == [(None, "unsupported_media_type")]


def test_card_without_customer_is_linked_to_the_email_customer(till, products, store):
    card = LoyaltyCardFactory(customer=None)

    response = till.post(
        URL,
        sale(loyalty_card=card.number, customer_email="anna@example.com"),
        format="json",
    )

    assert response.status_code == 201
    card = LoyaltyCard.objects.get(pk=card.pk)
    assert card.customer.email == "anna@example.com"
    assert Decimal(response.json()["total"]) == Decimal("104.95")


def test_customer_served_by_the_till_can_be_named_by_id(till, products, store):
    customer = CustomerFactory(home_store=store)

    response = till.post(URL, sale(customer=customer.pk), format="json")

    assert response.status_code == 201
    assert response.json()["customer"] == customer.pk
