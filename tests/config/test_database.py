"""PostgreSQL connections bind parameters on the server and prepare hot statements."""

import pytest
from django.db import connection

from crm.models import Store

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="PostgreSQL connection options"
)


def prepared_statements() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return {row[0] for row in cursor.fetchall()}


def test_a_statement_run_more_than_five_times_is_prepared(store):
    def lookup():
        return Store.objects.filter(code="ams").values_list("pk", flat=True).get()

    for _run in range(5):
        lookup()
    assert not any("crm_store" in sql for sql in prepared_statements())

    assert lookup() == store.pk

    assert any("crm_store" in sql and "$1" in sql for sql in prepared_statements())


SALE_TABLES = (
    "crm_receipt",
    "crm_receiptline",
    "crm_contact",
    "crm_customerstats",
    "crm_customercategorystats",
    "crm_idempotencyrecord",
    "segments_dirtycustomer",
)


def redundant_indexes() -> list[tuple[str, str]]:
    """(table, index) of plain indexes whose columns begin another index or
    unique constraint."""
    redundant = []
    with connection.cursor() as cursor:
        for table in SALE_TABLES:
            indexes = {
                name: (tuple(c["columns"]), c["unique"])
                for name, c in connection.introspection.get_constraints(
                    cursor, table
                ).items()
                if (c["index"] or c["unique"]) and c["columns"]
            }
            redundant += [
                (table, name)
                for name, (columns, unique) in indexes.items()
                for other, (longer, _unique) in indexes.items()
                if not unique
                and other != name
                and len(longer) > len(columns)
                and longer[: len(columns)] == columns
            ]
    return sorted(set(redundant))


def test_no_index_is_a_prefix_of_another_on_the_sale_tables(db):
    """Every sale writes these tables: an index whose columns begin another index
    only costs writes (the longer one serves the same lookups)."""
    assert redundant_indexes() == []
