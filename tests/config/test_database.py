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
