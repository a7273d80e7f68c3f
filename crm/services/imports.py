"""Import historical sales from CSV: validated in Python, written set-based at once.

The file has one receipt line per row under the header

    receipt_number,customer_email,purchased_at,store_code,sku,quantity,unit_price

(extra columns are ignored). Rows sharing a store and a receipt number form one
receipt, wherever they are in the file, and must agree on the customer and the
purchase time. A receipt is identified by (store, receipt_number): receipts already
in the database are skipped, so importing a file twice adds nothing.

- customer_email: empty for an anonymous sale; matched to customers whatever its
  capitals.
- purchased_at: ISO 8601. A time without a UTC offset is read in the store's time
  zone (`Store.time_zone`; `settings.TIME_ZONE` for a store the import creates).
  On the night clocks go back, such a time means the first of the two; times that
  lie in the future are refused.
- quantity: a whole number of at least 1; unit_price: an amount of at least 0,
  rounded to cents.

Historical sales neither move stock (today's counts already reflect them) nor earn
loyalty points (the file has no card column). They do get a purchase contact each,
which the `contacts_recorded` hook (the segment engine) hears about, and the
statistics of every customer they touch are recomputed (then the `stats_rebuilt`
hook is called, in the same transaction).
"""

import csv
import re
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TextIO

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.db.models import Model
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext as _

from crm import hooks
from crm.models import (
    Category,
    Contact,
    Customer,
    CustomerStats,
    Product,
    Receipt,
    ReceiptLine,
    SalesChannel,
    Store,
)

from .contacts import ContactRef, contact_announce
from .receipts import receipt_number_sequence
from .stats import customer_stats_refresh

COLUMNS = (
    "receipt_number",
    "customer_email",
    "purchased_at",
    "store_code",
    "sku",
    "quantity",
    "unit_price",
)
UNCATEGORISED = "uncategorised"

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# The largest values the columns hold (DecimalField max_digits, PostgreSQL integer).
MAX_UNIT_PRICE = Decimal("99999999.99")
MAX_TOTAL = Decimal("9999999999.99")
MAX_QUANTITY = 2_147_483_647
# Same rule as Store.code, a SlugField of 32.
STORE_CODE = re.compile(r"[-a-zA-Z0-9_]{1,32}")
MAX_NUMBER = Receipt._meta.get_field("number").max_length
MAX_SKU = Product._meta.get_field("sku").max_length
MAX_EMAIL = Customer._meta.get_field("email").max_length

WRITE_BATCH = 5000

CREATE_HINT = "(use --create-missing to create it)"

ReceiptKey = tuple[str, str]  # (store_code, receipt_number)


@dataclass(frozen=True)
class BadRow:
    line: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    """What an import did, or with `dry_run` would do."""

    lines_read: int = 0
    receipts_imported: int = 0
    lines_imported: int = 0
    receipts_already_imported: int = 0
    customers_created: int = 0
    stores_created: int = 0
    products_created: int = 0
    bad_rows: list[BadRow] = field(default_factory=list)
    # Receipts left out because at least one of their rows is bad.
    receipts_skipped: list[ReceiptKey] = field(default_factory=list)
    dry_run: bool = False

    @property
    def bad_row_count(self) -> int:
        return len({bad.line for bad in self.bad_rows})


@dataclass(slots=True)
class _Row:
    line: int
    key: ReceiptKey
    email: str  # lower-case; "" for an anonymous sale
    purchased_at: datetime  # naive until the store's time zone is applied
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(slots=True)
class _Receipt:
    line: int  # of its first row, which the other rows must agree with
    email: str
    purchased_at: datetime
    rows: list[_Row] = field(default_factory=list)
    total: Decimal = ZERO
    # Set while writing.
    store_id: int | None = None
    customer_id: int | None = None
    id: int | None = None


class _Problems:
    """Bad rows, and the receipts they spoil."""

    def __init__(self, report: ImportReport) -> None:
        self.report = report
        # Each spoilt receipt with its first bad line.
        self.spoilt: dict[ReceiptKey, int] = {}

    def add(
        self, line: int, code: str, message: str, key: ReceiptKey | None = None
    ) -> None:
        self.report.bad_rows.append(BadRow(line, code, message))
        if key is not None:
            self.spoil(key, line)

    def spoil(self, key: ReceiptKey, line: int) -> None:
        self.spoilt[key] = min(line, self.spoilt.get(key, line))


def receipts_import(
    *,
    source: TextIO,
    create_missing: bool = False,
    skip_bad_rows: bool = False,
    dry_run: bool = False,
) -> ImportReport:
    """Import the historical sales in CSV `source` in one transaction.

    See the module docstring for the format. Raises ValidationError and imports
    nothing when the header lacks columns, or when rows are bad and `skip_bad_rows`
    is off; with it, every receipt with a bad row is left out and reported.
    `create_missing` creates unknown stores, products and customers. `dry_run`
    validates and counts without writing.
    """
    report = ImportReport(dry_run=dry_run)
    problems = _Problems(report)
    rows = _rows_read(source, report=report, problems=problems)

    stores = _stores_find({row.key[0] for row in rows})
    receipts = _receipts_group(
        rows, stores=stores, create_missing=create_missing, problems=problems
    )
    good_rows = [row for receipt in receipts.values() for row in receipt.rows]
    products = _products_find({row.sku for row in good_rows})
    customers = _customers_find({row.email for row in good_rows if row.email})
    _references_check(
        good_rows,
        products=products,
        customers=customers,
        create_missing=create_missing,
        problems=problems,
    )
    _totals_check(receipts, problems=problems)

    report.bad_rows.sort(key=lambda bad: bad.line)
    if report.bad_rows and not skip_bad_rows:
        raise ValidationError(
            {
                "rows": [
                    # Escaped: the file's own text may hold a % sign.
                    ValidationError(
                        str(bad).replace("%", "%%"),
                        code=bad.code,
                        params={"line": bad.line},
                    )
                    for bad in report.bad_rows
                ]
            }
        )
    report.receipts_skipped = sorted(problems.spoilt, key=problems.spoilt.__getitem__)
    for key in problems.spoilt:
        receipts.pop(key, None)

    existing = _receipts_existing(receipts, stores=stores)
    report.receipts_already_imported = len(existing)
    todo = {key: r for key, r in receipts.items() if key not in existing}
    plan = _Plan.make(todo, stores=stores, products=products, customers=customers)
    report.receipts_imported = len(todo)
    report.lines_imported = sum(len(receipt.rows) for receipt in todo.values())
    report.stores_created = len(plan.new_stores)
    report.products_created = len(plan.new_products)
    report.customers_created = len(plan.new_customers)
    if dry_run or not todo:
        return report
    # Only the writes form the transaction: parsing and checking take no locks, and
    # on SQLite (immediate transactions) would otherwise hold up every till.
    try:
        with transaction.atomic():
            _write(
                todo, plan=plan, stores=stores, products=products, customers=customers
            )
    except IntegrityError as exc:
        raise ValidationError(
            {
                "source": ValidationError(
                    _(
                        "Nothing was imported: the database refused a row (%(error)s). "
                        "If a till or another import recorded the same receipts, "
                        "customers, stores or products meanwhile, run the import "
                        "again."
                    ),
                    code="write_conflict",
                    params={"error": str(exc).strip()},
                )
            }
        ) from exc
    return report


def _records(source: TextIO) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on (a quoted field may span lines)."""
    reader = csv.reader(source)
    line = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValidationError(
                {
                    "source": ValidationError(
                        _("Line %(line)d is not valid CSV: %(error)s."),
                        code="invalid_csv",
                        params={"line": line, "error": str(exc)},
                    )
                }
            ) from exc
        yield line, values
        line = reader.line_num + 1


def _rows_read(
    source: TextIO, *, report: ImportReport, problems: _Problems
) -> list[_Row]:
    """Parse every row, reporting the ones that are not well-formed."""
    records = _records(source)
    _line, header = next(records, (1, []))
    names = [name.strip().lstrip("\ufeff").strip().lower() for name in header]
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        raise ValidationError(
            {
                "header": ValidationError(
                    _(
                        "The header lacks the column(s) %(missing)s; it needs "
                        "%(columns)s."
                    ),
                    code="missing_columns",
                    params={
                        "missing": ", ".join(missing),
                        "columns": ",".join(COLUMNS),
                    },
                )
            }
        )
    width = len(names)
    i_number, i_email, i_time, i_store, i_sku, i_quantity, i_price = (
        names.index(column) for column in COLUMNS
    )
    emails: dict[str, str | None] = {}
    times: dict[str, datetime | None] = {}
    rows: list[_Row] = []
    for line, values in records:
        if not any(value.strip() for value in values):
            continue
        report.lines_read += 1
        if len(values) != width:
            problems.add(
                line,
                "field_count",
                _("%(found)d fields where the header has %(expected)d")
                % {"found": len(values), "expected": width},
            )
            continue
        number = values[i_number].strip()
        store_code = values[i_store].strip()
        key = (store_code, number) if number and store_code else None
        problems_before = len(report.bad_rows)
        if not number:
            problems.add(line, "number_missing", _("receipt_number is empty"))
        elif len(number) > MAX_NUMBER:
            problems.add(
                line,
                "number_too_long",
                _("receipt_number '%(value)s' is longer than %(max)d characters")
                % {"value": number, "max": MAX_NUMBER},
                key,
            )
        if not store_code:
            problems.add(line, "store_missing", _("store_code is empty"))

        raw = values[i_email]
        email = emails.get(raw)
        if email is None and raw not in emails:
            email = emails[raw] = _email_parse(raw)
        if email is None:
            problems.add(
                line,
                "invalid_email",
                _("'%(value)s' is not an email address") % {"value": raw.strip()},
                key,
            )

        raw = values[i_time]
        purchased_at = times.get(raw)
        if purchased_at is None and raw not in times:
            purchased_at = times[raw] = _time_parse(raw)
        if purchased_at is None:
            problems.add(
                line,
                "invalid_date",
                _(
                    "purchased_at '%(value)s' is not an ISO 8601 date and time "
                    "such as 2024-03-01T14:30:00+01:00"
                )
                % {"value": raw.strip()},
                key,
            )

        sku = values[i_sku].strip()
        if not sku:
            problems.add(line, "sku_missing", _("sku is empty"), key)
        elif len(sku) > MAX_SKU:
            problems.add(
                line,
                "sku_too_long",
                _("sku '%(value)s' is longer than %(max)d characters")
                % {"value": sku, "max": MAX_SKU},
                key,
            )

        raw = values[i_quantity].strip()
        # The length check keeps int() clear of its limit on huge digit strings.
        digits = raw.isascii() and raw.isdigit() and len(raw) <= 10
        quantity = int(raw) if digits else 0
        if not 0 < quantity <= MAX_QUANTITY:
            problems.add(
                line,
                "invalid_quantity",
                _("quantity '%(value)s' is not a whole number of at least 1")
                % {"value": raw},
                key,
            )

        raw = values[i_price].strip()
        unit_price, error = _price_parse(raw)
        if error:
            problems.add(line, error[0], error[1], key)

        if len(report.bad_rows) == problems_before:
            rows.append(_Row(line, key, email, purchased_at, sku, quantity, unit_price))
    return rows


def _email_parse(raw: str) -> str | None:
    email = raw.strip().lower()
    if not email:
        return ""
    if len(email) > MAX_EMAIL:
        return None
    try:
        validate_email(email)
    except ValidationError:
        return None
    return email


def _time_parse(raw: str) -> datetime | None:
    try:
        return datetime.fromisoformat(raw.strip())
    except ValueError:
        return None


def _price_parse(raw: str) -> tuple[Decimal, tuple[str, str] | None]:
    try:
        price = Decimal(raw)
    except InvalidOperation:
        price = None
    if price is None or not price.is_finite():
        return ZERO, (
            "invalid_price",
            _("unit_price '%(value)s' is not an amount such as 12.50") % {"value": raw},
        )
    if price < 0:
        return ZERO, (
            "negative_price",
            _("unit_price '%(value)s' is negative") % {"value": raw},
        )
    if price <= MAX_UNIT_PRICE:
        # Only here: quantize() fails on amounts beyond its 28 digits of precision.
        price = price.quantize(CENT, rounding=ROUND_HALF_UP)
    if price > MAX_UNIT_PRICE:
        return ZERO, (
            "price_too_large",
            _("unit_price '%(value)s' is larger than %(max)s")
            % {"value": raw, "max": MAX_UNIT_PRICE},
        )
    return price, None


def _chunk_size() -> int:
    # SQLite binds at most max_query_params values per statement.
    limit = connection.features.max_query_params
    return 10_000 if limit is None else min(10_000, limit - 10)


def _chunks(values: list) -> list[list]:
    size = _chunk_size()
    return [values[start : start + size] for start in range(0, len(values), size)]


def _stores_find(codes: set[str]) -> dict[str, Store]:
    return (
        Store.objects.order_by()
        .only("pk", "code", "time_zone")
        .in_bulk(codes, field_name="code")
    )


def _products_find(skus: set[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(skus)):
        found.update(
            Product.objects.filter(sku__in=chunk).order_by().values_list("sku", "pk")
        )
    return found


def _customers_find(emails: set[str]) -> dict[str, int]:
    """Customer ids by lower-case email; the lookup uses the Lower(email) index."""
    found: dict[str, int] = {}
    for chunk in _chunks(sorted(emails)):
        found.update(
            Customer.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=chunk)
            .order_by()
            .values_list("email_lower", "pk")
        )
    return found


def _receipts_group(
    rows: list[_Row],
    *,
    stores: dict[str, Store],
    create_missing: bool,
    problems: _Problems,
) -> dict[ReceiptKey, _Receipt]:
    """Place naive times in the store's zone and gather the rows per receipt."""
    now = timezone.now()
    default_zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    zones: dict[str, tzinfo | None] = {}
    receipts: dict[ReceiptKey, _Receipt] = {}
    for row in rows:
        store_code, number = row.key
        if store_code not in zones:
            store = stores.get(store_code)
            if store is not None:
                zones[store_code] = store.zone
            elif create_missing and STORE_CODE.fullmatch(store_code):
                zones[store_code] = default_zone
            else:
                zones[store_code] = None
        zone = zones[store_code]
        if zone is None:
            if create_missing:
                problems.add(
                    row.line,
                    "invalid_store_code",
                    _(
                        "store '%(code)s' cannot be created: a store code is at "
                        "most 32 letters, digits, hyphens and underscores"
                    )
                    % {"code": store_code},
                    row.key,
                )
            else:
                problems.add(
                    row.line,
                    "unknown_store",
                    _("unknown store '%(code)s' %(hint)s")
                    % {"code": store_code, "hint": CREATE_HINT},
                    row.key,
                )
            continue
        if row.purchased_at.tzinfo is None:
            row.purchased_at = row.purchased_at.replace(tzinfo=zone)
        if row.purchased_at > now:
            problems.add(
                row.line,
                "future_date",
                _("purchased_at %(value)s lies in the future")
                % {"value": row.purchased_at.isoformat()},
                row.key,
            )
            continue
        receipt = receipts.get(row.key)
        if receipt is None:
            receipt = receipts[row.key] = _Receipt(
                row.line, row.email, row.purchased_at
            )
        elif row.email != receipt.email:
            problems.add(
                row.line,
                "receipt_customer_mismatch",
                _(
                    "receipt '%(number)s' of store '%(code)s' has customer "
                    "'%(first)s' on line %(line)d but '%(this)s' here"
                )
                % {
                    "number": number,
                    "code": store_code,
                    "first": receipt.email or _("(anonymous)"),
                    "line": receipt.line,
                    "this": row.email or _("(anonymous)"),
                },
                row.key,
            )
            continue
        elif row.purchased_at != receipt.purchased_at:
            problems.add(
                row.line,
                "receipt_time_mismatch",
                _(
                    "receipt '%(number)s' of store '%(code)s' was purchased at "
                    "%(first)s on line %(line)d but at %(this)s here"
                )
                % {
                    "number": number,
                    "code": store_code,
                    "first": receipt.purchased_at.isoformat(),
                    "line": receipt.line,
                    "this": row.purchased_at.isoformat(),
                },
                row.key,
            )
            continue
        receipt.rows.append(row)
    return receipts


def _references_check(
    rows: list[_Row],
    *,
    products: dict[str, int],
    customers: dict[str, int],
    create_missing: bool,
    problems: _Problems,
) -> None:
    if create_missing:
        return
    for row in rows:
        # Unknown stores were reported while grouping.
        if row.sku not in products:
            problems.add(
                row.line,
                "unknown_sku",
                _("unknown sku '%(sku)s' %(hint)s")
                % {"sku": row.sku, "hint": CREATE_HINT},
                row.key,
            )
        if row.email and row.email not in customers:
            problems.add(
                row.line,
                "unknown_customer",
                _("unknown customer '%(email)s' %(hint)s")
                % {"email": row.email, "hint": CREATE_HINT},
                row.key,
            )


def _totals_check(receipts: dict[ReceiptKey, _Receipt], *, problems: _Problems) -> None:
    for key, receipt in receipts.items():
        receipt.total = sum(
            (row.unit_price * row.quantity for row in receipt.rows), ZERO
        )
        if receipt.total > MAX_TOTAL:
            problems.add(
                receipt.line,
                "total_too_large",
                _("receipt '%(number)s' adds up to %(total)s, more than %(max)s")
                % {"number": key[1], "total": receipt.total, "max": MAX_TOTAL},
                key,
            )


def _receipts_existing(
    receipts: dict[ReceiptKey, _Receipt], *, stores: dict[str, Store]
) -> set[ReceiptKey]:
    numbers_by_store: dict[str, list[str]] = {}
    for store_code, number in receipts:
        if store_code in stores:
            numbers_by_store.setdefault(store_code, []).append(number)
    existing: set[ReceiptKey] = set()
    for store_code, numbers in numbers_by_store.items():
        for chunk in _chunks(numbers):
            found = (
                Receipt.objects.filter(store_id=stores[store_code].pk, number__in=chunk)
                .order_by()
                .values_list("number", flat=True)
            )
            existing.update((store_code, number) for number in found)
    return existing


@dataclass
class _Plan:
    """The stores, products (with their first price) and customers (with their
    first purchase) the import creates."""

    new_stores: list[str]
    new_products: dict[str, Decimal]
    new_customers: dict[str, datetime]

    @classmethod
    def make(
        cls,
        todo: dict[ReceiptKey, _Receipt],
        *,
        stores: dict[str, Store],
        products: dict[str, int],
        customers: dict[str, int],
    ) -> "_Plan":
        new_stores: dict[str, None] = {}
        new_products: dict[str, Decimal] = {}
        new_customers: dict[str, datetime] = {}
        for (store_code, _number), receipt in todo.items():
            if store_code not in stores:
                new_stores[store_code] = None
            for row in receipt.rows:
                if row.sku not in products and row.sku not in new_products:
                    new_products[row.sku] = row.unit_price
            email = receipt.email
            if email and email not in customers:
                first = new_customers.get(email)
                if first is None or receipt.purchased_at < first:
                    new_customers[email] = receipt.purchased_at
        return cls(list(new_stores), new_products, new_customers)


def _write(
    todo: dict[ReceiptKey, _Receipt],
    *,
    plan: _Plan,
    stores: dict[str, Store],
    products: dict[str, int],
    customers: dict[str, int],
) -> None:
    """Create what is missing, then the receipts, lines and purchase contacts."""
    store_ids = {code: store.pk for code, store in stores.items()}
    if plan.new_stores:
        created = Store.objects.bulk_create(
            [Store(code=code, name=code, city="") for code in plan.new_stores],
            batch_size=WRITE_BATCH,
        )
        store_ids.update((store.code, store.pk) for store in created)
    if plan.new_products:
        category, _created = Category.objects.get_or_create(
            slug=UNCATEGORISED, defaults={"name": "Uncategorised"}
        )
        created = Product.objects.bulk_create(
            [
                Product(sku=sku, name=sku, category=category, price=price)
                for sku, price in plan.new_products.items()
            ],
            batch_size=WRITE_BATCH,
        )
        products = products | {product.sku: product.pk for product in created}
    if plan.new_customers:
        # Dated from their first purchase, so reports of new customers keep their
        # history rather than showing every imported customer as new today.
        created = Customer.objects.bulk_create(
            [
                Customer(email=email, source=Customer.Source.IMPORT, created_at=first)
                for email, first in plan.new_customers.items()
            ],
            batch_size=WRITE_BATCH,
        )
        CustomerStats.objects.bulk_create(
            [CustomerStats(customer_id=customer.pk) for customer in created],
            batch_size=WRITE_BATCH,
        )
        customers = customers | {customer.email: customer.pk for customer in created}

    for (store_code, _number), receipt in todo.items():
        receipt.store_id = store_ids[store_code]
        receipt.customer_id = customers[receipt.email] if receipt.email else None
    receipt_ids = _rows_insert(
        Receipt,
        (
            "number",
            "store_id",
            "customer_id",
            "channel",
            "purchased_at",
            "total",
            "currency",
            "payment_method",
            "status",
        ),
        [
            (
                number,
                receipt.store_id,
                receipt.customer_id,
                SalesChannel.STORE.value,
                receipt.purchased_at,
                receipt.total,
                settings.LOYALIST_CURRENCY,
                Receipt.PaymentMethod.UNKNOWN.value,
                Receipt.Status.COMPLETED.value,
            )
            for (_store_code, number), receipt in todo.items()
        ],
    )
    for receipt, receipt_id in zip(todo.values(), receipt_ids, strict=True):
        receipt.id = receipt_id
    _rows_insert(
        ReceiptLine,
        (
            "receipt_id",
            "product_id",
            "quantity",
            "unit_price",
            "discount",
            "line_total",
        ),
        [
            (
                receipt.id,
                products[row.sku],
                row.quantity,
                row.unit_price,
                ZERO,
                row.unit_price * row.quantity,
            )
            for receipt in todo.values()
            for row in receipt.rows
        ],
    )
    purchases = [receipt for receipt in todo.values() if receipt.customer_id]
    contact_ids = _rows_insert(
        Contact,
        ("customer_id", "kind", "channel", "occurred_at", "store_id", "receipt_id"),
        [
            (
                receipt.customer_id,
                Contact.Kind.PURCHASE.value,
                Contact.ContactChannel.STORE.value,
                receipt.purchased_at,
                receipt.store_id,
                receipt.id,
            )
            for receipt in purchases
        ],
    )
    _sequences_advance(todo, store_ids=store_ids)
    touched = {receipt.customer_id for receipt in purchases}
    customer_stats_refresh(customer_ids=touched)
    hooks.stats_rebuilt.send(customer_ids=touched)
    contact_announce(
        contacts=[
            ContactRef(receipt.customer_id, contact_id)
            for receipt, contact_id in zip(purchases, contact_ids, strict=True)
        ]
    )


def _rows_insert(
    model: type[Model], columns: tuple[str, ...], rows: list[tuple]
) -> list[int]:
    """Insert rows of values for `columns` (attribute names); return their new ids.

    Every other column gets its field's default, evaluated once (so not for models
    with auto_now fields or database defaults). On PostgreSQL the rows are streamed
    with COPY under ids drawn from the table's sequence first: several times faster
    than bulk_create, which spends most of its time building and adapting model
    instances. Elsewhere bulk_create does the work.
    """
    if not rows:
        return []
    if connection.vendor != "postgresql":
        instances = [model(**dict(zip(columns, row, strict=True))) for row in rows]
        model.objects.bulk_create(instances, batch_size=WRITE_BATCH)
        return [instance.pk for instance in instances]
    meta = model._meta
    given = [meta.get_field(name) for name in columns]
    rest = [
        field
        for field in meta.concrete_fields
        if not field.primary_key and field.attname not in columns
    ]
    defaults = tuple(
        field.get_db_prep_save(field.get_default(), connection) for field in rest
    )
    quote = connection.ops.quote_name
    names = ", ".join(quote(field.column) for field in [meta.pk, *given, *rest])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) "
            "FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        # The raw psycopg cursor: Django's wrapper has no COPY. Its errors still
        # become Django's (IntegrityError on a duplicate receipt, for one).
        with (
            connection.wrap_database_errors,
            cursor.cursor.copy(
                f"COPY {quote(meta.db_table)} ({names}) FROM STDIN"
            ) as copy,
        ):
            for new_id, row in zip(ids, rows, strict=True):
                copy.write_row((new_id, *row, *defaults))
    return ids


def _sequences_advance(
    todo: dict[ReceiptKey, _Receipt], *, store_ids: dict[str, int]
) -> None:
    """Move each store's receipt sequence past imported numbers in the till's format.

    `receipt_record` numbers receipts CODE-0000001, CODE-0000002, ...; without this a
    till would later hand out a number the import already used.
    """
    highest: dict[str, int] = {}
    for store_code, number in todo:
        sequence = receipt_number_sequence(store_code, number)
        if sequence is not None and highest.get(store_code, 0) < sequence:
            highest[store_code] = sequence
    # Primary-key order, so that two imports never deadlock on each other's stores.
    for store_id, sequence in sorted(
        (store_ids[store_code], sequence) for store_code, sequence in highest.items()
    ):
        Store.objects.filter(pk=store_id, receipt_sequence__lt=sequence).update(
            receipt_sequence=sequence
        )
