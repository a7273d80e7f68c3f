"""Storage of a customer's segments: one JSON array of segment ids per customer.

A row per (segment, customer) made a first build of 50 segments over 100,000
customers write 1.6 million rows (and as many history rows), which no index or
foreign-key setting makes cheap. One sorted array per customer is written once per
customer, compared in the same pass that evaluates the rules, and found by segment
through a GIN index on PostgreSQL (`jsonb_path_ops`, created by migration 0003).
"""

import json

from django.db import models
from django.db.models import Func, Lookup, TextField, Value


class SegmentIdsField(models.JSONField):
    """A sorted JSON array of segment ids. Filter with `__includes=<segment id>`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("default", list)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is list:
            del kwargs["default"]
        return name, path, args, kwargs


@SegmentIdsField.register_lookup
class Includes(Lookup):
    """The array holds the given segment id (an int)."""

    lookup_name = "includes"
    prepare_rhs = False

    def get_prep_lookup(self):
        return int(self.rhs)

    def as_postgresql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        # Containment is what the jsonb_path_ops GIN index answers.
        return f"{lhs} @> %s::jsonb", [*params, json.dumps([self.rhs])]

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return (
            f"EXISTS (SELECT 1 FROM json_each({lhs}) WHERE json_each.value = %s)",
            [*params, self.rhs],
        )


class MatchedIds(Func):
    """The ids of the matching segments as the text of a sorted JSON array (jsonb on
    PostgreSQL, read back as text), from one part per
    segment in id order that is "<id>," when it matches and "" when not:
    '[' || rtrim(part || part || ..., ',') || ']'.

    The parts are joined flat: nested concatenations overflow SQLite's parser
    with dozens of segments. The parts are never NULL.
    """

    arg_joiner = " || "
    template = "('[' || rtrim(%(expressions)s, ',') || ']')"

    def __init__(self, *parts, **extra):
        super().__init__(*parts, Value(""), output_field=TextField(), **extra)

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = self.as_sql(compiler, connection, **extra_context)
        return f"({sql})::jsonb", params


def ids_elements_sql(column: str, vendor: str) -> tuple[str, str]:
    """A FROM item with one row per id of the array `column`, and the id's SQL.

    Joined with a comma after the table holding `column`, on both databases.
    """
    if vendor == "postgresql":
        return f"jsonb_array_elements_text({column}) x", "x::int"
    return f"json_each({column}) x", "x.value"


def results_differ_sql(stored: str, fresh: str, vendor: str) -> str:
    """SQL that is true when the `fresh` results differ from the `stored` ones.

    Both are table aliases with `segment_ids` and `persona_id`; `stored` also has
    `rules_version`, compared with the parameter it leaves in the SQL (the pass's
    version). This is the one place the engine decides what changed.
    """
    if vendor == "postgresql":
        ids_differ = f"{stored}.segment_ids <> {fresh}.segment_ids"
    else:
        # SQLite keeps JSON as text: json() gives both sides one spelling.
        ids_differ = f"json({stored}.segment_ids) <> json({fresh}.segment_ids)"
    return (
        f"({stored}.rules_version <> %s OR {ids_differ}"
        f" OR {stored}.persona_id IS DISTINCT FROM {fresh}.persona_id)"
    )


def ids_include_sql(column: str, id_sql: str, vendor: str) -> str:
    """SQL that is true when the JSON id array `column` holds the id `id_sql`."""
    if vendor == "postgresql":
        return f"({column} @> jsonb_build_array({id_sql}))"
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = {id_sql})"
