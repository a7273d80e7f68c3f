"""Append many generated rows to tables fast: COPY on PostgreSQL, executemany elsewhere.

Rows are plain tuples in the order of the table's columns, with values the database
reads as they are: ints, None, decimals and timestamps already written as text
("12.50", "2025-03-01 14:05:00" in UTC). Ids are given by the caller, who takes them
from `id_next`, so that child rows can point at their parents without a round trip.
"""

import queue
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.db import connection, models

# Rows kept per table before they are written in one statement.
BATCH_ROWS = 50_000
# Batches formatted ahead of the COPY thread; each is a few megabytes.
COPY_QUEUE = 4
# In COPY's text format a backslash starts an escape; the only one written is \N.
_ESCAPE_OTHER_THAN_NULL = re.compile(r"\\(?!N[\t\n])")


class BulkTable:
    def __init__(self, writer: "BulkWriter", model: type[models.Model], columns: str):
        self.writer = writer
        self.name = model._meta.db_table
        self.columns = [column.strip() for column in columns.split(",")]
        self.rows: list[tuple] = []
        self.written = 0
        unknown = set(self.columns) - {f.column for f in model._meta.concrete_fields}
        if unknown:
            raise ValueError(f"{self.name} has no columns {sorted(unknown)}")

    def flush(self) -> None:
        if self.rows:
            self.writer.rows_write(self, self.rows)
            self.written += len(self.rows)
            # Emptied in place: generators keep a reference to the list.
            self.rows.clear()


class BulkWriter:
    """Buffers rows per table and writes them in batches, inside the caller's
    transaction."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"
        self.tables: list[BulkTable] = []
        self._copier: _CopyThread | None = None

    def table(self, model: type[models.Model], columns: str) -> BulkTable:
        table = BulkTable(self, model, columns)
        self.tables.append(table)
        return table

    def flush(self, *, full_only: bool = False) -> None:
        for table in self.tables:
            if not full_only or len(table.rows) >= BATCH_ROWS:
                table.flush()

    def id_next(self, model: type[models.Model]) -> int:
        """The first id above every id the table holds or its sequence handed out.

        Ids from here on are the caller's as long as nobody else inserts: inside
        `loading()` the tables are locked, on SQLite the whole database is.
        """
        table = model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT MAX(id) FROM {table}")  # noqa: S608
            highest = cursor.fetchone()[0] or 0
            if self.postgres:
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
                sequence = cursor.fetchone()[0]
                cursor.execute(f"SELECT last_value, is_called FROM {sequence}")  # noqa: S608
                last_value, is_called = cursor.fetchone()
                if is_called:
                    highest = max(highest, last_value)
        return highest + 1

    def sequences_reset(self) -> None:
        """Move each table's id sequence past the ids written here (PostgreSQL)."""
        if not self.postgres:
            # SQLite's AUTOINCREMENT already follows the largest id inserted.
            return
        with connection.cursor() as cursor:
            for table in self.tables:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, 'id'),"  # noqa: S608
                    f" COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table.name}",
                    [table.name],
                )

    def rows_write(self, table: BulkTable, rows: Sequence[tuple]) -> None:
        columns = ", ".join(table.columns)
        if self.postgres:
            statement = f"COPY {table.name} ({columns}) FROM STDIN"
            text = _copy_text(table, rows)
            if self._copier is not None:
                self._copier.put(statement, text)
                return
            with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
                copy.write(text)
        else:
            marks = ", ".join(["?"] * len(table.columns))
            with connection.cursor() as cursor:
                cursor.cursor.executemany(
                    f"INSERT INTO {table.name} ({columns}) VALUES ({marks})",  # noqa: S608
                    rows,
                )

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Write the tables with their secondary indexes and foreign keys suspended
        (PostgreSQL), and flush every row at the end.

        Meanwhile a second thread runs the COPY statements on the same connection
        and transaction, so that the server stores one batch while Python generates
        the next.
        """
        if not self.postgres:
            yield
            self.flush()
            return
        with indexes_and_foreign_keys_suspended([t.name for t in self.tables]):
            self._copier = _CopyThread(connection.connection)
            try:
                yield
                self.flush()
            finally:
                copier, self._copier = self._copier, None
                copier.close()


@contextmanager
def indexes_and_foreign_keys_suspended(tables: list[str]) -> Iterator[None]:
    """Fill the tables without their secondary indexes and foreign keys.

    PostgreSQL's advice for populating a database: maintaining indexes row by row
    and queueing one deferred foreign-key check per row cost several times more than
    building the indexes afterwards and validating each foreign key with one join.
    Both are dropped here and recreated at the end inside the caller's transaction,
    so a failure restores them; unique indexes stay and guard the load throughout.
    Elsewhere than on PostgreSQL this does nothing.
    """
    if connection.vendor != "postgresql":
        yield
        return
    if not connection.in_atomic_block:
        raise RuntimeError("Bulk loading must run inside a transaction.")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        # Fire the checks deferred so far: a table with pending trigger events cannot
        # be altered.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        cursor.execute(
            """
            SELECT con.conrelid::regclass::text, con.conname,
                   pg_get_constraintdef(con.oid)
            FROM pg_constraint con
            WHERE con.contype = 'f' AND con.conrelid::regclass::text = ANY(%s)
            ORDER BY 1, 2
            """,
            [tables],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(
            """
            SELECT index.relname, pg_get_indexdef(ix.indexrelid)
            FROM pg_index ix
            JOIN pg_class index ON index.oid = ix.indexrelid
            WHERE ix.indrelid::regclass::text = ANY(%s)
              AND NOT ix.indisunique AND NOT ix.indisprimary
              AND NOT EXISTS (
                  SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid
              )
            ORDER BY 1
            """,
            [tables],
        )
        indexes = cursor.fetchall()
        for table, name, _definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
        for name, _definition in indexes:
            cursor.execute(f"DROP INDEX {quote(name)}")
    yield
    with connection.cursor() as cursor:
        # Index builds sort in memory instead of spilling to disk.
        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        for _name, definition in indexes:
            cursor.execute(definition)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        for table, name, definition in foreign_keys:
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}"
            )
        # Fresh tables have no planner statistics; queries that follow in this
        # transaction would otherwise join millions of rows blind.
        cursor.execute(f"ANALYZE {', '.join(tables)}")


class _CopyThread:
    """Runs queued COPY statements one after the other on a psycopg connection.

    psycopg serialises the use of a connection with a lock, so a query from the
    main thread simply waits for the COPY in progress.
    """

    def __init__(self, raw_connection) -> None:
        self.raw_connection = raw_connection
        self.batches: queue.Queue = queue.Queue(maxsize=COPY_QUEUE)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="seed-copy", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while (batch := self.batches.get()) is not None:
            if self.error is not None:
                continue  # keep draining, so that put() never blocks for ever
            statement, text = batch
            try:
                with (
                    self.raw_connection.cursor() as cursor,
                    cursor.copy(statement) as copy,
                ):
                    copy.write(text)
            except BaseException as exc:  # handed over to the main thread
                self.error = exc

    def _raise(self) -> None:
        if self.error is not None:
            # As Django's own cursors do: IntegrityError and friends, not psycopg's.
            with connection.wrap_database_errors:
                raise self.error

    def put(self, statement: str, text: str) -> None:
        self._raise()
        self.batches.put((statement, text))

    def close(self) -> None:
        self.batches.put(None)
        self.thread.join()
        self._raise()


def _copy_text(table: BulkTable, rows: Sequence[tuple]) -> str:
    r"""Rows in COPY's text format, NULL written as \N."""
    line = "\t".join(["%s"] * len(table.columns)) + "\n"
    # The id comes first, so every None follows a tab.
    text = "".join(map(line.__mod__, rows)).replace("\tNone", "\t\\N")
    # The values come from the generator's own word lists and never hold a tab, a
    # newline, a backslash or a text beginning with "None"; make sure of it.
    if (
        _ESCAPE_OTHER_THAN_NULL.search(text)
        or text.count("\n") != len(rows)
        or text.count("\t") != len(rows) * (len(table.columns) - 1)
    ):
        raise ValueError(f"A row for {table.name} holds a character COPY escapes.")
    return text
