"""Per-customer statistics, computed by the same set-based SQL for one or all customers.

The receipt services refresh the customers they touch inside their own transaction;
`customer_stats_rebuild` runs the very same statements over customer-id ranges, so the
incremental figures and a full rebuild can never disagree.
"""

from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from crm import hooks
from crm.fanout import customer_id_ranges
from crm.models import (
    Category,
    Contact,
    Customer,
    CustomerCategoryStats,
    CustomerStats,
    Product,
    Receipt,
    ReceiptLine,
)

# Chunk size for explicit id lists; far below SQLite's limit on bound parameters.
ID_CHUNK = 2000


def _tables() -> dict[str, str]:
    return {
        "customer": Customer._meta.db_table,
        "stats": CustomerStats._meta.db_table,
        "catstats": CustomerCategoryStats._meta.db_table,
        "receipt": Receipt._meta.db_table,
        "line": ReceiptLine._meta.db_table,
        "product": Product._meta.db_table,
        "contact": Contact._meta.db_table,
        "category": Category._meta.db_table,
    }


def _preferred_channel_sql(in_store: str, online: str, by_phone: str) -> str:
    """The channel with the most orders (ties: store, then online), as SQL over
    the three order counts; shared by the recompute and the per-sale upsert."""
    return (
        f"CASE WHEN {in_store} >= {online} AND {in_store} >= {by_phone} "
        f"THEN 'store' WHEN {online} >= {by_phone} THEN 'online' ELSE 'phone' END"
    )


def _favourite_category_sql(customer_id: str) -> str:
    """The category the customer spent most on (ties: lowest id), as SQL."""
    return (
        f"(SELECT cs.category_id FROM {CustomerCategoryStats._meta.db_table} cs "
        f"WHERE cs.customer_id = {customer_id} "
        "ORDER BY cs.spent DESC, cs.category_id LIMIT 1)"
    )


def _refresh(where: str, params: Sequence) -> int:
    """Recompute the statistics of the customers selected by `where` on column `{col}`.

    `where` is a condition with a `{col}` placeholder for the customer id column.
    """
    t = _tables()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {t['catstats']} WHERE {where.format(col='customer_id')}",
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO {t["catstats"]}
                (customer_id, category_id, orders, quantity, spent, last_purchase_at)
            SELECT r.customer_id, p.category_id, COUNT(DISTINCT r.id),
                   SUM(l.quantity), SUM(l.line_total), MAX(r.purchased_at)
            FROM {t["line"]} l
            JOIN {t["receipt"]} r ON r.id = l.receipt_id
            JOIN {t["product"]} p ON p.id = l.product_id
            WHERE r.status = 'completed' AND {where.format(col="r.customer_id")}
            GROUP BY r.customer_id, p.category_id
            """,
            params,
        )
        cursor.execute(
            f"""
            INSERT INTO {t["stats"]}
                (customer_id, orders, total_spent, avg_order_value, first_purchase_at,
                 last_purchase_at, last_contact_at, orders_in_store, orders_online,
                 orders_by_phone, preferred_purchase_channel, favourite_category_id,
                 updated_at)
            SELECT c.id,
                   COALESCE(a.orders, 0),
                   COALESCE(a.spent, 0),
                   COALESCE(ROUND(a.spent / a.orders, 2), 0),
                   a.first_at,
                   a.last_at,
                   lc.last_contact_at,
                   COALESCE(a.in_store, 0),
                   COALESCE(a.online, 0),
                   COALESCE(a.by_phone, 0),
                   CASE WHEN a.orders IS NULL THEN '' ELSE {
                _preferred_channel_sql("a.in_store", "a.online", "a.by_phone")
            } END,
                   {_favourite_category_sql("c.id")},
                   %s
            FROM {t["customer"]} c
            LEFT JOIN (
                SELECT customer_id,
                       COUNT(*) AS orders,
                       SUM(total) AS spent,
                       MIN(purchased_at) AS first_at,
                       MAX(purchased_at) AS last_at,
                       SUM(CASE WHEN channel = 'store' THEN 1 ELSE 0 END) AS in_store,
                       SUM(CASE WHEN channel = 'online' THEN 1 ELSE 0 END) AS online,
                       SUM(CASE WHEN channel = 'phone' THEN 1 ELSE 0 END) AS by_phone
                FROM {t["receipt"]}
                WHERE status = 'completed' AND {where.format(col="customer_id")}
                GROUP BY customer_id
            ) a ON a.customer_id = c.id
            LEFT JOIN (
                SELECT customer_id, MAX(occurred_at) AS last_contact_at
                FROM {t["contact"]}
                WHERE {where.format(col="customer_id")}
                GROUP BY customer_id
            ) lc ON lc.customer_id = c.id
            WHERE {where.format(col="c.id")}
            ON CONFLICT (customer_id) DO UPDATE SET
                orders = excluded.orders,
                total_spent = excluded.total_spent,
                avg_order_value = excluded.avg_order_value,
                first_purchase_at = excluded.first_purchase_at,
                last_purchase_at = excluded.last_purchase_at,
                last_contact_at = excluded.last_contact_at,
                orders_in_store = excluded.orders_in_store,
                orders_online = excluded.orders_online,
                orders_by_phone = excluded.orders_by_phone,
                preferred_purchase_channel = excluded.preferred_purchase_channel,
                favourite_category_id = excluded.favourite_category_id,
                updated_at = excluded.updated_at
            """,
            [now, *params, *params, *params],
        )
        # One row per customer selected (inserted or updated).
        return cursor.rowcount


@transaction.atomic(savepoint=False)
def customer_stats_refresh(*, customer_ids: Iterable[int]) -> None:
    """Recompute the statistics of the given customers from their receipts."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        placeholders = ", ".join(["%s"] * len(chunk))
        _refresh("{col} IN (" + placeholders + ")", chunk)


def _later(column: str, value: str) -> str:
    """SQL for the later of a nullable column and a value (portable GREATEST)."""
    return (
        f"CASE WHEN {column} IS NULL OR {value} > {column} "
        f"THEN {value} ELSE {column} END"
    )


def customer_stats_add_sale(
    *,
    customer_id: int,
    channel: str,
    purchased_at,
    total: Decimal,
    lines: Sequence[tuple[int, int, Decimal]],
) -> None:
    """Add one new completed sale to its customer's statistics.

    `lines` are (category id, quantity, line total). The same figures as
    `customer_stats_refresh` at a fixed cost, however long the customer's history:
    every total is moved by this sale alone. The upserts lock the customer's rows,
    so concurrent sales of one customer add up instead of overwriting each other.
    Anything else that changes a history (a void, an import) recomputes.
    """
    t = _tables()
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    at = connection.ops.adapt_datetimefield_value(purchased_at)
    by_category: dict[int, list] = {}
    for category_id, quantity, line_total in lines:
        figures = by_category.setdefault(category_id, [0, Decimal("0")])
        figures[0] += quantity
        figures[1] += line_total
    counts = {c: int(channel == c) for c in ("store", "online", "phone")}
    with connection.cursor() as cursor:
        if by_category:
            values = ", ".join(["(%s, %s, 1, %s, %s, %s)"] * len(by_category))
            cursor.execute(
                f"""
                INSERT INTO {t["catstats"]} AS cs
                    (customer_id, category_id, orders, quantity, spent,
                     last_purchase_at)
                VALUES {values}
                ON CONFLICT (customer_id, category_id) DO UPDATE SET
                    orders = cs.orders + 1,
                    quantity = cs.quantity + excluded.quantity,
                    spent = cs.spent + excluded.spent,
                    last_purchase_at = {
                    _later("cs.last_purchase_at", "excluded.last_purchase_at")
                }
                """,
                [
                    value
                    for category_id, (quantity, spent) in sorted(by_category.items())
                    for value in (customer_id, category_id, quantity, spent, at)
                ],
            )
        in_store = "s.orders_in_store + excluded.orders_in_store"
        online = "s.orders_online + excluded.orders_online"
        by_phone = "s.orders_by_phone + excluded.orders_by_phone"
        cursor.execute(
            f"""
            INSERT INTO {t["stats"]} AS s
                (customer_id, orders, total_spent, avg_order_value, first_purchase_at,
                 last_purchase_at, last_contact_at, orders_in_store, orders_online,
                 orders_by_phone, preferred_purchase_channel, favourite_category_id,
                 updated_at)
            VALUES (%s, 1, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                    {_favourite_category_sql("%s")},
                    %s)
            ON CONFLICT (customer_id) DO UPDATE SET
                orders = s.orders + 1,
                total_spent = s.total_spent + excluded.total_spent,
                avg_order_value =
                    ROUND((s.total_spent + excluded.total_spent) / (s.orders + 1), 2),
                first_purchase_at = CASE
                    WHEN s.first_purchase_at IS NULL
                        OR excluded.first_purchase_at < s.first_purchase_at
                    THEN excluded.first_purchase_at ELSE s.first_purchase_at END,
                last_purchase_at = {
                _later("s.last_purchase_at", "excluded.last_purchase_at")
            },
                last_contact_at = {
                _later("s.last_contact_at", "excluded.last_contact_at")
            },
                orders_in_store = {in_store},
                orders_online = {online},
                orders_by_phone = {by_phone},
                preferred_purchase_channel = {
                _preferred_channel_sql(in_store, online, by_phone)
            },
                favourite_category_id = excluded.favourite_category_id,
                updated_at = excluded.updated_at
            """,
            [
                customer_id,
                total,
                total,
                at,
                at,
                at,
                counts["store"],
                counts["online"],
                counts["phone"],
                channel,
                customer_id,
                now,
            ],
        )


def customer_stats_refresh_range(*, first_id: int, last_id: int) -> int:
    """Recompute the statistics of every customer with first_id <= id <= last_id;
    returns how many customers that range holds."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # Large aggregates spill to disk at the default 4MB; only this
            # transaction gets more.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '256MB'")
        return _refresh("{col} BETWEEN %s AND %s", [first_id, last_id])


def customer_stats_rebuild(
    *, chunk_size: int = 50_000, progress: Callable[[int], None] | None = None
) -> int:
    """Rebuild every customer's statistics set-based, one id range per transaction.

    Returns the number of customers covered; `progress` is called with the number
    of customers done after each range. The `stats_rebuilt` hook is called at the end.
    """
    total = 0
    for low, high in customer_id_ranges(chunk_size):
        done = customer_stats_refresh_range(first_id=low, last_id=high)
        total += done
        if progress is not None:
            progress(done)
    hooks.stats_rebuilt.send(customer_ids=None)
    return total
