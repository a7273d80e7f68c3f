"""Storage of a customer's segments: one JSON array of segment ids per customer.

A row per (segment, customer) made a first build of 50 segments over 100,000
customers write 1.6 million rows (and as many history rows), which no index or
foreign-key setting makes cheap. One sorted array per customer is written once per
customer, compared in the same pass that evaluates the rules, and found by segment
through a GIN index on PostgreSQL (`jsonb_path_ops`, created by migration 0003).
"""

from collections.abc import Iterable

from django.db import models
from django.db.models import Case, Func, Lookup, Q, TextField, Value, When


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

    def as_sql(self, compiler, connection):
        lhs, params = self.process_lhs(compiler, connection)
        return ids_include_sql(lhs, "%s", connection.vendor), [*params, self.rhs]


class MatchedIds(Func):
    """The ids of the matching segments as the text of a sorted JSON array (jsonb on
    PostgreSQL, read back as text), from `(segment id, condition)` pairs: one part
    per segment in id order, "<id>, " when its condition holds and "" when not,
    '[' || rtrim(part || part || ..., ', ') || ']'.

    The array is spelt as Django writes a JSON field (`json.dumps`: "[3, 7]"), so on
    SQLite, which keeps JSON as text, a stored array and a fresh one compare equal
    exactly when they hold the same ids. The parts are joined flat: nested
    concatenations overflow SQLite's parser with dozens of segments.
    """

    arg_joiner = " || "
    template = "('[' || rtrim(%(expressions)s, ', ') || ']')"

    def __init__(self, matches: Iterable[tuple[int, Q]], **extra):
        parts = [
            Case(
                When(condition, then=Value(f"{pk}, ")),
                default=Value(""),
                output_field=TextField(),
            )
            for pk, condition in sorted(matches, key=lambda match: match[0])
        ]
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


def results_differ_sql(stored: str, fresh: str) -> str:
    """SQL that is true when the `fresh` results differ from the `stored` ones.

    Both are table aliases with `segment_ids` and `persona_id`; `stored` also has
    `rules_version`, compared with the parameter it leaves in the SQL (the pass's
    version). This is the one place the engine decides what changed. The arrays
    compare as jsonb on PostgreSQL and as text on SQLite (one spelling: MatchedIds).
    """
    return (
        f"({stored}.rules_version <> %s OR {stored}.segment_ids <> {fresh}.segment_ids"
        f" OR {stored}.persona_id IS DISTINCT FROM {fresh}.persona_id)"
    )


def ids_include_sql(column: str, id_sql: str, vendor: str) -> str:
    """SQL that is true when the JSON id array `column` holds the id `id_sql`: for
    the `includes` lookup and the engine's set-based history statement alike."""
    if vendor == "postgresql":
        # Containment is what the jsonb_path_ops GIN index answers.
        return f"({column} @> jsonb_build_array({id_sql}))"
    return f"EXISTS (SELECT 1 FROM json_each({column}) WHERE value = {id_sql})"
