"""Storage of a customer's segments: one JSON array of segment ids per customer.

A row per (segment, customer) made a first build of 50 segments over 100,000
customers write 1.6 million rows (and as many history rows), which no index or
foreign-key setting makes cheap. One sorted array per customer is written once per
customer, compared in the same pass that evaluates the rules, and found by segment
through a GIN index on PostgreSQL (`jsonb_path_ops`, created by migration 0003).
"""

import json

from django.db import models
from django.db.models import Lookup


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


def ids_elements_sql(column: str, vendor: str) -> tuple[str, str]:
    """A FROM item with one row per id of the array `column`, and the id's SQL.

    Joined with a comma after the table holding `column`, on both databases.
    """
    if vendor == "postgresql":
        return f"jsonb_array_elements_text({column}) x", "x::int"
    return f"json_each({column}) x", "x.value"


def signature_ids_sql(column: str, vendor: str) -> str:
    """SQL turning a signature ("v1a2b3c4d,3,7,p12") into its JSON ids ([3, 7])."""
    if vendor == "postgresql":
        return f"""COALESCE((
            SELECT jsonb_agg(part::int ORDER BY n)
            FROM unnest(string_to_array({column}, ',')) WITH ORDINALITY AS p (part, n)
            WHERE part ~ '^[0-9]+$'), '[]'::jsonb)"""
    # SQLite has no string splitting: the function registered by sqlite_functions.
    return f"loyalist_signature_ids({column})"


def signature_ids(signature: str) -> set[int]:
    """The segment ids of a signature (its version and persona are left out)."""
    return {int(part) for part in signature.split(",") if part.isdigit()}


def signature_ids_json(signature: str) -> str:
    """Python twin of signature_ids_sql, registered as an SQLite function."""
    return json.dumps(sorted(signature_ids(signature)))


def sqlite_functions(sender, connection, **kwargs) -> None:
    """Register the SQL functions the engine needs on each new SQLite connection."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "loyalist_signature_ids", 1, signature_ids_json, deterministic=True
        )
