import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from crm import hooks
from crm.models import (
    Contact,
    Customer,
    CustomerStats,
    LoyaltyTransaction,
    Product,
    Receipt,
    ReceiptLine,
    Store,
)
from crm.services import LineInput, receipt_record
from crm.services.imports import receipts_import
from tests.crm.factories import CustomerFactory

pytestmark = pytest.mark.django_db

HEADER = "receipt_number,customer_email,purchased_at,store_code,sku,quantity,unit_price"


def csv_file(*rows: str, header: str = HEADER) -> io.StringIO:
    return io.StringIO("\n".join([header, *rows]) + "\n")


def two_receipts() -> io.StringIO:
    return csv_file(
        "R1,joe@example.com,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95",
        "R1,joe@example.com,2024-03-01T10:15:00+01:00,ams,BAG-1,2,24.50",
        "R2,joe@example.com,2024-04-02T16:00:00+02:00,ams,SHOE-2,1,80.00",
        "R2,joe@example.com,2024-04-02T16:00:00+02:00,ams,BAG-1,1,24.50",
    )


def table_counts() -> tuple[int, ...]:
    return (
        Receipt.objects.count(),
        ReceiptLine.objects.count(),
        Contact.objects.count(),
        Customer.objects.count(),
        Store.objects.count(),
        Product.objects.count(),
    )


def row_errors(exc: ValidationError) -> list[tuple[int, str]]:
    return [(error.params["line"], error.code) for error in exc.error_dict["rows"]]


def test_import_records_receipts_with_their_lines_totals_and_stats(
    store, products, customer
):
    report = receipts_import(source=two_receipts())

    assert (report.receipts_imported, report.lines_imported) == (2, 4)
    first, second = Receipt.objects.order_by("purchased_at")
    assert (first.number, first.store, first.customer) == ("R1", store, customer)
    assert first.total == Decimal("108.95")
    assert second.total == Decimal("104.50")
    assert first.purchased_at == datetime(2024, 3, 1, 9, 15, tzinfo=UTC)
    assert (first.payment_method, first.channel, first.status) == (
        "unknown",
        "store",
        "completed",
    )
    assert first.clerk is None
    assert first.currency == "EUR"
    assert sorted(
        first.lines.values_list("product__sku", "quantity", "line_total")
    ) == [
        ("BAG-1", 2, Decimal("49.00")),
        ("SHOE-1", 1, Decimal("59.95")),
    ]
    stats = CustomerStats.objects.get(customer=customer)
    assert stats.orders == 2
    assert stats.total_spent == Decimal("213.45")
    assert stats.first_purchase_at == first.purchased_at
    assert stats.last_purchase_at == second.purchased_at
    assert stats.last_contact_at == second.purchased_at
    assert first.contacts.get().payload == {}
    purchases = Contact.objects.filter(kind="purchase", customer=customer)
    assert sorted(purchases.values_list("receipt__number", "channel", "store")) == [
        ("R1", "store", store.pk),
        ("R2", "store", store.pk),
    ]


def test_import_moves_no_stock_and_earns_no_points(store, products, customer):
    receipts_import(source=two_receipts())

    assert Product.objects.get(sku="BAG-1").stock_level == 100
    assert not LoyaltyTransaction.objects.exists()
    assert set(Receipt.objects.values_list("points_earned", flat=True)) == {0}


def test_importing_the_same_file_twice_adds_nothing(store, products, customer):
    receipts_import(source=two_receipts())
    before = table_counts()

    report = receipts_import(source=two_receipts())

    assert table_counts() == before
    assert (report.receipts_imported, report.receipts_already_imported) == (0, 2)
    assert CustomerStats.objects.get(customer=customer).orders == 2


def test_unknown_sku_refuses_the_whole_file_naming_line_and_reason(
    store, products, customer
):
    source = csv_file(
        "R1,joe@example.com,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95",
        "R2,,2024-03-01T11:00:00+01:00,ams,HAT-9,1,15.00",
    )

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert exc.value.messages == [
        "line 3: unknown sku 'HAT-9' (use --create-missing to create it)"
    ]
    assert not Receipt.objects.exists()


def test_create_missing_creates_store_product_and_customer(store, products):
    source = csv_file(
        "7,New@Example.com,2024-03-01T10:15:00+01:00,rtm,HAT-9,2,15.00",
        "7,new@example.com,2024-03-01T10:15:00+01:00,rtm,HAT-9,1,14.00",
        "8,new@example.com,2024-05-01T10:15:00+02:00,ams,SHOE-1,1,59.95",
    )

    report = receipts_import(source=source, create_missing=True)

    assert (report.stores_created, report.products_created) == (1, 1)
    assert report.customers_created == 1
    rotterdam = Store.objects.get(code="rtm")
    hat = Product.objects.get(sku="HAT-9")
    assert (hat.name, hat.price, hat.category.slug) == (
        "HAT-9",
        Decimal("15.00"),
        "uncategorised",
    )
    customer = Customer.objects.get(email="new@example.com")
    assert customer.source == "import"
    assert customer.created_at == datetime(2024, 3, 1, 9, 15, tzinfo=UTC)
    stats = CustomerStats.objects.get(customer=customer)
    assert (stats.orders, stats.total_spent) == (2, Decimal("103.95"))
    assert Receipt.objects.get(store=rotterdam, number="7").total == Decimal("44.00")


def test_create_missing_refuses_a_store_code_it_cannot_create(store, products):
    source = csv_file("R1,,2024-03-01T10:15:00+01:00,den haag,SHOE-1,1,59.95")

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source, create_missing=True)

    assert row_errors(exc.value) == [(2, "invalid_store_code")]
    assert not Store.objects.filter(code="den haag").exists()


def test_skip_bad_rows_imports_the_good_receipts_and_reports_the_skipped_ones(
    store, products, customer
):
    source = csv_file(
        "R1,joe@example.com,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95",
        "R2,,2024-03-01T11:00:00+01:00,ams,SHOE-1,1,59.95",
        "R2,,2024-03-01T11:00:00+01:00,ams,HAT-9,1,15.00",
        "R3,,yesterday,ams,BAG-1,1,24.50",
    )

    report = receipts_import(source=source, skip_bad_rows=True)

    assert list(Receipt.objects.values_list("number", flat=True)) == ["R1"]
    assert (report.receipts_imported, report.lines_imported) == (1, 1)
    assert report.receipts_skipped == [("ams", "R2"), ("ams", "R3")]
    assert [(bad.line, bad.code) for bad in report.bad_rows] == [
        (4, "unknown_sku"),
        (5, "invalid_date"),
    ]
    assert report.bad_row_count == 2


def test_missing_header_columns_are_named():
    source = csv_file(
        "R1,2024-03-01T10:15:00+01:00,ams,1,59.95",
        header="receipt_number,purchased_at,store_code,quantity,unit_price",
    )

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert exc.value.error_dict["header"][0].code == "missing_columns"
    assert "customer_email, sku" in exc.value.messages[0]


def test_an_empty_file_lacks_every_column():
    with pytest.raises(ValidationError) as exc:
        receipts_import(source=io.StringIO(""))

    assert "receipt_number, customer_email, purchased_at" in exc.value.messages[0]


def test_columns_may_come_in_any_order_with_extra_ones(store, products):
    source = csv_file(
        "59.95,SHOE-1,note,1,ams,2024-03-01T10:15:00+01:00,,R1",
        header="unit_price,sku,note,quantity,store_code,purchased_at,"
        "customer_email,receipt_number",
    )

    receipts_import(source=source)

    assert Receipt.objects.get().total == Decimal("59.95")


def test_line_numbers_count_the_lines_a_quoted_field_spans(store, products):
    source = csv_file(
        '59.95,SHOE-1,"gift,\nwrapped",1,ams,2024-03-01T10:15:00+01:00,,R1',
        "59.95,HAT-9,,1,ams,2024-03-01T10:15:00+01:00,,R2",
        header="unit_price,sku,note,quantity,store_code,purchased_at,"
        "customer_email,receipt_number",
    )

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert row_errors(exc.value) == [(4, "unknown_sku")]


@pytest.mark.parametrize(
    ("purchased_at", "code"),
    [
        ("2024-02-30T10:00:00", "invalid_date"),
        ("01/03/2024 10:00", "invalid_date"),
        ("", "invalid_date"),
        ((timezone.now() + timedelta(days=1)).isoformat(), "future_date"),
    ],
)
def test_a_bad_purchase_time_is_a_bad_row(store, products, purchased_at, code):
    source = csv_file(f"R1,,{purchased_at},ams,SHOE-1,1,59.95")

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert row_errors(exc.value) == [(2, code)]
    assert not Receipt.objects.exists()


@pytest.mark.parametrize("quantity", ["-1", "0", "1.5", "two", "", "9" * 5000])
def test_a_quantity_that_is_not_a_positive_whole_number_is_a_bad_row(
    store, products, quantity
):
    source = csv_file(f"R1,,2024-03-01T10:15:00+01:00,ams,SHOE-1,{quantity},59.95")

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert row_errors(exc.value) == [(2, "invalid_quantity")]
    assert exc.value.messages[0].startswith(f"line 2: quantity '{quantity}'")


@pytest.mark.parametrize(
    ("price", "code"),
    [
        ("-5.00", "negative_price"),
        ("12,50", "invalid_price"),
        ("NaN", "invalid_price"),
        ("", "invalid_price"),
        ("123456789", "price_too_large"),
        ("1e999999", "price_too_large"),
    ],
)
def test_a_price_that_is_not_an_amount_of_at_least_zero_is_a_bad_row(
    store, products, price, code
):
    source = csv_file(f'R1,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,"{price}"')

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert row_errors(exc.value) == [(2, code)]


def test_a_file_that_is_not_csv_is_refused_with_its_line(store, products):
    # A quote left open swallows the rest of the file into one huge field.
    source = csv_file(
        "R1,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,5",
        '"R2,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,5',
        *["R3,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,5"] * 5000,
    )

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert exc.value.error_dict["source"][0].code == "invalid_csv"
    assert exc.value.messages[0].startswith(
        "Line 3 is not valid CSV: field larger than field limit"
    )


def test_a_receipt_recorded_meanwhile_fails_the_import_and_writes_nothing(
    monkeypatch, store, products, customer
):
    # Given a till (or a second import) that records R1 after the import has
    # looked for existing receipts
    from crm.services import imports

    receipts_import(source=csv_file("R1,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95"))
    monkeypatch.setattr(imports, "_receipts_existing", lambda *a, **k: set())
    before = table_counts()

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=two_receipts())

    assert exc.value.error_dict["source"][0].code == "write_conflict"
    assert "run the import again" in exc.value.messages[0]
    assert table_counts() == before


def test_a_bad_email_is_a_bad_row(store, products):
    source = csv_file("R1,joe(at)example,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,5")

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source, create_missing=True)

    assert row_errors(exc.value) == [(2, "invalid_email")]


def test_a_row_with_missing_fields_is_a_bad_row(store, products):
    source = csv_file("R1,,2024-03-01T10:15:00+01:00,ams,SHOE-1")

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert exc.value.messages == ["line 2: 5 fields where the header has 7"]


def test_every_problem_of_a_row_is_reported(store, products):
    source = csv_file("R1,,tomorrow,ams,SHOE-1,-1,-5")

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert row_errors(exc.value) == [
        (2, "invalid_date"),
        (2, "invalid_quantity"),
        (2, "negative_price"),
    ]


def test_rows_of_one_receipt_naming_different_customers_are_bad(
    store, products, customer
):
    other = CustomerFactory(email="ann@example.com")
    source = csv_file(
        "R1,joe@example.com,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95",
        "R1,ann@example.com,2024-03-01T10:15:00+01:00,ams,BAG-1,1,24.50",
        "R1,,2024-03-01T10:15:00+01:00,ams,BAG-1,1,24.50",
    )

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    assert row_errors(exc.value) == [
        (3, "receipt_customer_mismatch"),
        (4, "receipt_customer_mismatch"),
    ]
    assert exc.value.messages[0] == (
        "line 3: receipt 'R1' of store 'ams' has customer 'joe@example.com' on "
        "line 2 but 'ann@example.com' here"
    )
    assert not other.receipts.exists()


def test_rows_of_one_receipt_with_different_purchase_times_are_bad(store, products):
    source = csv_file(
        "R1,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95",
        "R1,,2024-03-01T09:15:00Z,ams,BAG-1,1,24.50",
        "R1,,2024-03-01T10:16:00+01:00,ams,BAG-1,1,24.50",
    )

    with pytest.raises(ValidationError) as exc:
        receipts_import(source=source)

    # 09:15Z is the same moment as 10:15+01:00.
    assert row_errors(exc.value) == [(4, "receipt_time_mismatch")]


def test_the_same_receipt_number_in_two_stores_is_two_receipts(
    store, other_store, products
):
    source = csv_file(
        "1,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95",
        "1,,2024-03-01T12:00:00+01:00,utr,BAG-1,1,24.50",
    )

    receipts_import(source=source)

    assert sorted(Receipt.objects.values_list("store__code", "total")) == [
        ("ams", Decimal("59.95")),
        ("utr", Decimal("24.50")),
    ]


def test_an_email_matches_the_existing_customer_whatever_its_capitals(
    store, products, customer
):
    source = csv_file("R1,JOE@Example.Com,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,5")

    report = receipts_import(source=source)

    assert Receipt.objects.get().customer == customer
    assert report.customers_created == 0


def test_an_empty_email_is_an_anonymous_sale(store, products, customer):
    source = csv_file("R1,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95")

    receipts_import(source=source, create_missing=True)

    assert Receipt.objects.get().customer is None
    assert not Contact.objects.exists()
    assert Customer.objects.count() == 1


def test_naive_purchase_times_are_read_in_the_store_time_zone(store, products):
    Store.objects.filter(pk=store.pk).update(time_zone="America/New_York")
    source = csv_file(
        "R1,,2024-01-15T10:00:00,ams,SHOE-1,1,59.95",
        "R2,,2024-07-15 10:00,ams,SHOE-1,1,59.95",
        "R3,,2024-07-15T10:00:00+02:00,ams,SHOE-1,1,59.95",
    )

    receipts_import(source=source)

    times = dict(Receipt.objects.values_list("number", "purchased_at"))
    assert times == {
        "R1": datetime(2024, 1, 15, 15, 0, tzinfo=UTC),
        "R2": datetime(2024, 7, 15, 14, 0, tzinfo=UTC),
        "R3": datetime(2024, 7, 15, 8, 0, tzinfo=UTC),
    }


consumer_calls: list = []


def record_consumer(*, contacts):
    consumer_calls.append(sorted(tuple(ref) for ref in contacts))


def test_contact_consumers_hear_about_every_imported_purchase(
    settings, store, products, customer
):
    consumer_calls.clear()
    hooks.contacts_recorded.register(record_consumer)
    try:
        receipts_import(source=two_receipts())
    finally:
        hooks.contacts_recorded.unregister(record_consumer)

    purchases = Contact.objects.filter(kind="purchase").order_by("pk")
    assert consumer_calls == [[(customer.pk, contact.pk) for contact in purchases]]
    assert len(consumer_calls[0]) == 2


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite binds at most 999 values a statement, so inserts go in row batches",
)
def test_the_query_count_does_not_grow_with_the_number_of_rows(
    django_assert_max_num_queries, store, other_store, products
):
    CustomerFactory.create_batch(5)
    rows = [
        f"{number},customer{number % 40}@example.com,2024-03-01T10:15:00+01:00,"
        f"{('ams', 'utr', 'rtm')[number % 3]},{('SHOE-1', 'NEW-1')[line % 2]},"
        f"{line + 1},9.99"
        for number in range(50)
        for line in range(4)
    ]
    source = csv_file(*rows)

    with django_assert_max_num_queries(30):
        report = receipts_import(source=source, create_missing=True)

    assert (report.receipts_imported, report.lines_imported) == (50, 200)
    assert CustomerStats.objects.filter(orders__gt=0).count() == 40


def test_a_dry_run_checks_and_counts_but_writes_nothing(store, products):
    before = table_counts()

    report = receipts_import(
        source=csv_file("R1,new@example.com,2024-03-01T10:15:00,xyz,NEW,1,5"),
        create_missing=True,
        dry_run=True,
    )

    assert table_counts() == before
    assert (report.receipts_imported, report.customers_created) == (1, 1)
    assert (report.stores_created, report.products_created) == (1, 1)


def test_imported_till_numbers_move_the_store_sequence_on(store, products):
    source = csv_file(
        "AMS-0000041,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95",
        "AMS-0000007,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,59.95",
    )
    receipts_import(source=source)

    receipt = receipt_record(
        store=store, payment_method="card", lines=[LineInput("SHOE-1", 1)]
    )

    assert receipt.number == "AMS-0000042"


# The command


def test_command_imports_the_file_and_prints_a_summary(
    tmp_path, capsys, store, products, customer
):
    path = tmp_path / "sales.csv"
    path.write_text("\ufeff" + two_receipts().getvalue(), encoding="utf-8")

    call_command("import_receipts", str(path))

    out = capsys.readouterr().out
    assert "Imported 2 receipts with 4 lines." in out
    assert "Skipped 0 receipts already imported and 0 receipts with 0 bad rows." in out
    assert "Created 0 customers, 0 stores and 0 products." in out
    assert "lines/s" in out
    assert Receipt.objects.count() == 2


def test_command_fails_listing_the_bad_rows_when_they_stop_the_import(
    tmp_path, capsys, store, products
):
    path = tmp_path / "sales.csv"
    path.write_text(
        csv_file("R1,,2024-03-01T10:15:00+01:00,ams,HAT-9,1,15").getvalue(),
        encoding="utf-8",
    )

    with pytest.raises(CommandError, match="1 bad row in"):
        call_command("import_receipts", str(path))

    assert "line 2: unknown sku 'HAT-9'" in capsys.readouterr().err
    assert not Receipt.objects.exists()


def test_command_reports_the_receipts_it_skipped(tmp_path, capsys, store, products):
    path = tmp_path / "sales.csv"
    path.write_text(
        csv_file(
            "R1,,2024-03-01T10:15:00+01:00,ams,HAT-9,1,15",
            "R2,,2024-03-01T10:15:00+01:00,ams,SHOE-1,1,15",
        ).getvalue(),
        encoding="utf-8",
    )

    call_command("import_receipts", str(path), "--skip-bad-rows")

    captured = capsys.readouterr()
    assert "skipped receipt 'R1' of store 'ams'" in captured.err
    assert "and 1 receipt with 1 bad row." in captured.out
    assert list(Receipt.objects.values_list("number", flat=True)) == ["R2"]


def test_command_names_a_file_it_cannot_read(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_receipts", str(tmp_path / "missing.csv"))
