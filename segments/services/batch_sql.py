"""The batch query of the incremental and time paths, compiled once, run often.

Building the ORM expression of every active segment and persona rule and compiling
it costs far more Python than PostgreSQL needs to run it for a batch, and a drain
under steady traffic runs it for every few customers. The SQL depends only on the
rules, the RFM thresholds and the date (ages count whole years); batches differ in
their customer ids and their clock. So on PostgreSQL the query is compiled once
with both left open as typed parameters:

- `BATCH_IDS`: the batch's customer ids (one `bigint[]`);
- `segments.fields.ClockAt(offset)`: the batch's clock plus an offset, one for
  every `segments.fields.clock()` of a compile with `Context.open_clock`.

`BatchQuery.run` fills them in; no other parameter depends on the batch. One query
is kept, for the key it was compiled for (the caller's fingerprint of the rules and
the date). On SQLite, the embedded default of a single shop, the ORM compiles the
query for every batch.
"""

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from crm.models import Customer

from ..fields import ClockAt, Context


class _BatchIds:
    """The parameter standing for the batch's customer ids."""

    def __repr__(self) -> str:
        return "BATCH_IDS"


BATCH_IDS = _BatchIds()


@dataclass(frozen=True)
class BatchQuery:
    """Compiled SQL over "the batch's customers, at the batch's clock"."""

    sql: str
    params: tuple[Any, ...]

    def run(self, *, ids: Sequence[int], ctx: Context) -> list[tuple]:
        values = [
            list(ids)
            if param is BATCH_IDS
            else ctx.now + param.offset
            if isinstance(param, ClockAt)
            else param
            for param in self.params
        ]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, values)
            return cursor.fetchall()


_kept: dict[tuple, BatchQuery] = {}


def batch_rows(
    *,
    key: tuple,
    build: Callable[[QuerySet, Context], QuerySet],
    ctx: Context,
    ids: Sequence[int],
) -> list[tuple]:
    """The rows of `build(<the customers ids>, ctx)`, through the query kept for
    `key` when there is one.

    `key` must change whenever the SQL `build` compiles would (anything but the ids
    and the clock), and `build`'s rows must need no conversion from the database's
    types: the kept query runs on a plain cursor.
    """
    if connection.vendor != "postgresql":
        return list(build(Customer.objects.filter(pk__in=ids), ctx))
    query = _kept.get(key)
    if query is None:
        customers = Customer.objects.filter(
            pk__in=RawSQL("SELECT unnest(%s::bigint[])", (BATCH_IDS,))
        )
        open_ctx = dataclasses.replace(ctx, open_clock=True)
        sql, params = build(customers, open_ctx).query.sql_with_params()
        query = BatchQuery(sql=sql, params=tuple(params))
        _kept.clear()  # one rule set is live at a time
        _kept[key] = query
    return query.run(ids=ids, ctx=ctx)
