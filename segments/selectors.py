"""Reads for the segment pages: previews, explanations, members and overlaps."""

from dataclasses import replace
from datetime import date, datetime
from typing import Any

from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    DateTimeField,
    Expression,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from crm.models import Customer, CustomerCategoryStats

from .compiler import context_build, rule_condition
from .db import ids_elements_sql
from .explanations import leaf_facts, leaf_says
from .fields import FIELDS, Context, rfm_score
from .models import CustomerSegmentState, EvaluationRow, Segment, SegmentEvent
from .query import format_rule

# An explanation shows the rules of nested segments down to this depth; deeper
# nested segments are shown by their result only.
EXPLAIN_NESTED_DEPTH = 3


def segment_preview(
    *, rules: dict, limit: int = 20, ctx: Context | None = None
) -> tuple[int, list[Customer]]:
    """Count the customers a checked rule matches and sample them; nothing is saved."""
    ctx = ctx or context_build()
    matching = Customer.objects.filter(rule_condition(rules, ctx))
    count = matching.count()
    if not count:
        return 0, []
    sample = list(matching.select_related("stats").order_by("-pk")[:limit])
    return count, sample


# Explain ---------------------------------------------------------------------------


def _raw_value(ctx: Context, leaf: dict) -> Expression | None:
    """What to show as the customer's value for fields without a value expression."""
    match leaf["field"]:
        case "age":
            return F("birth_date")
        case "days_since_last_purchase":
            return F("stats__last_purchase_at")
        case "bought_category_within_days":
            last = CustomerCategoryStats.objects.filter(
                customer_id=OuterRef("pk"), category__slug=leaf["value"]["category"]
            ).values("last_purchase_at")[:1]
            return Subquery(last, output_field=DateTimeField())
    spec = FIELDS.get(leaf["field"])
    if spec is not None and spec.shown is not None:
        return spec.shown(ctx, leaf["value"])
    return spec.value(ctx) if spec is not None and spec.value is not None else None


def _fact(ctx: Context, name: str) -> Expression:
    """One of the customer's values a sentence needs (explanations.RFM_FACTS)."""
    match name:
        case "last_purchase_at":
            return F("stats__last_purchase_at")
        case "orders":
            return F("stats__orders")
        case "total_spent":
            return F("stats__total_spent")
    return rfm_score(ctx, name)


def _shown_value(ctx: Context, leaf: dict, raw: Any) -> Any:
    if raw is None:
        return None
    match leaf["field"]:
        case "age" if isinstance(raw, date):
            years = ctx.today.year - raw.year
            return years - ((ctx.today.month, ctx.today.day) < (raw.month, raw.day))
        case "days_since_last_purchase" if isinstance(raw, datetime):
            return (ctx.now - raw).days
    return raw


class _Explainer:
    """Builds the explanation tree and the annotations that fill it in one query."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.annotations: dict[str, Expression] = {}
        # Facts are the same whatever leaf asks for them: annotated once.
        self.facts: dict[str, str] = {}

    def _annotate(self, expression: Expression) -> str:
        name = f"explain_{len(self.annotations)}"
        self.annotations[name] = expression
        return name

    def _facts(self, field: str) -> dict[str, str]:
        for name in leaf_facts(field):
            if name not in self.facts:
                self.facts[name] = self._annotate(_fact(self.ctx, name))
        return {name: self.facts[name] for name in leaf_facts(field)}

    def _truth(self, rule: dict, ctx: Context) -> str:
        return self._annotate(
            Case(
                When(rule_condition(rule, ctx), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            )
        )

    def plan(self, rule: dict, ctx: Context, depth: int = 0) -> dict:
        for group in ("all", "any"):
            if group in rule:
                return {
                    "kind": group,
                    "children": [self.plan(child, ctx, depth) for child in rule[group]],
                }
        if "not" in rule:
            return {"kind": "not", "children": [self.plan(rule["not"], ctx, depth)]}
        node: dict[str, Any] = {
            "kind": "segment" if rule["field"] == "segment" else "leaf",
            "field": rule["field"],
            "op": rule["op"],
            "value": rule["value"],
            "text": format_rule(rule),
            "children": [],
            "_truth": self._truth(rule, ctx),
        }
        if rule["field"] == "segment":
            node["children"] = [
                self._nested(slug, ctx, depth) for slug in rule["value"]
            ]
            return node
        raw = _raw_value(ctx, rule)
        if raw is not None:
            node["_value"] = self._annotate(raw)
        node["_leaf"] = rule
        node["_facts"] = self._facts(rule["field"])
        return node

    def _nested(self, slug: str, ctx: Context, depth: int) -> dict:
        inner = ctx.segment_rules.get(slug)
        node: dict[str, Any] = {"kind": "segment", "slug": slug, "children": []}
        if inner is None or slug in ctx.stack:
            # Inactive, deleted or cyclic: the compiler treats it as empty.
            node["result"] = False
            node["missing"] = True
            return node
        nested = replace(ctx, stack=(*ctx.stack, slug))
        node["text"] = format_rule(inner)
        node["_truth"] = self._truth(inner, nested)
        if depth < EXPLAIN_NESTED_DEPTH:
            node["children"] = [self.plan(inner, nested, depth + 1)]
        return node

    def fill(self, node: dict, row: dict) -> dict:
        children = [self.fill(child, row) for child in node.get("children", [])]
        node["children"] = children
        truth = node.pop("_truth", None)
        if truth is not None:
            node["result"] = bool(row[truth])
        elif node["kind"] == "all":
            node["result"] = all(child["result"] for child in children)
        elif node["kind"] == "any":
            node["result"] = any(child["result"] for child in children)
        elif node["kind"] == "not":
            node["result"] = not children[0]["result"]
        value = node.pop("_value", None)
        leaf = node.pop("_leaf", None)
        facts = {name: row[key] for name, key in node.pop("_facts", {}).items()}
        if node["kind"] == "leaf":
            # has_value tells "the customer has no value" from "no value to show".
            node["has_value"] = value is not None
            raw = row[value] if value is not None else None
            node["actual"] = _shown_value(self.ctx, leaf, raw)
            # In words, with dates as days ago and money with its currency.
            node["says"] = leaf_says(leaf, raw, facts, self.ctx)
        elif node["kind"] == "segment" and "field" in node:
            node["actual"] = [child["slug"] for child in children if child["result"]]
        return node


def segment_explain(
    *, customer: Customer, segment: Segment, ctx: Context | None = None
) -> dict:
    """Which conditions of the segment's rule hold for the customer, and their values.

    Every leaf's truth and value comes from one query on the customer; `all`, `any`
    and `not` are combined here from the leaves, so the tree agrees with the
    compiled rule.
    """
    ctx = ctx or context_build()
    (tree,) = rules_explain(customer=customer, rules=[(segment.rules, ctx)], ctx=ctx)
    return tree


def rules_explain(
    *, customer: Customer, rules: list[tuple[dict, Context]], ctx: Context
) -> list[dict]:
    """The explanation trees of several rules (each with the context it compiles
    in) for one customer, from one query."""
    explainer = _Explainer(ctx)
    trees = [explainer.plan(rule, rule_ctx) for rule, rule_ctx in rules]
    row: dict[str, Any] = {}
    if explainer.annotations:
        row = (
            Customer.objects.filter(pk=customer.pk)
            .annotate(**explainer.annotations)
            .values(*explainer.annotations)
            .get()
        )
    return [explainer.fill(tree, row) for tree in trees]


# Members and overlaps --------------------------------------------------------------


def segment_member_list(*, segment: Segment) -> QuerySet[Customer]:
    """The segment's current members, newest customers first, with `entered_at`.

    `entered_at` is the customer's latest entry in the history, or the moment the
    segment was built for members found by its first whole-base pass.
    """
    if not segment.is_active:
        return Customer.objects.none().annotate(
            entered_at=Value(None, output_field=DateTimeField())
        )
    return (
        Customer.objects.filter(segment_state__segment_ids__includes=segment.pk)
        .annotate(
            entered_at=Coalesce(
                Subquery(
                    _latest_entry(segment_id=segment.pk, customer_id=OuterRef("pk"))
                ),
                Value(segment.built_at, output_field=DateTimeField()),
            )
        )
        .order_by("-pk")
    )


def customer_segment_list(*, customer: Customer) -> QuerySet[Segment]:
    """The segments the customer is in now, with `entered_at`."""
    state = CustomerSegmentState.objects.filter(customer=customer).first()
    return (
        Segment.objects.filter(
            pk__in=state.segment_ids if state else [], is_active=True
        )
        .annotate(
            entered_at=Coalesce(
                Subquery(
                    _latest_entry(segment_id=OuterRef("pk"), customer_id=customer.pk)
                ),
                F("built_at"),
            )
        )
        .order_by("name")
    )


def segment_is_member(*, segment: Segment, customer: Customer) -> bool:
    return (
        segment.is_active
        and CustomerSegmentState.objects.filter(
            customer=customer, segment_ids__includes=segment.pk
        ).exists()
    )


def active_segment_slugs() -> dict[int, str]:
    return dict(Segment.objects.filter(is_active=True).values_list("pk", "slug"))


def _latest_entry(*, segment_id, customer_id) -> QuerySet[SegmentEvent]:
    return (
        SegmentEvent.objects.filter(
            segment_id=segment_id,
            customer_id=customer_id,
            kind=SegmentEvent.Kind.ENTERED,
        )
        .order_by("-occurred_at", "-id")
        .values("occurred_at")[:1]
    )


def segment_overlaps(
    *, segment: Segment, threshold: float = 0.9
) -> list[tuple[Segment, float]]:
    """Active segments sharing at least `threshold` of either segment's members.

    The share is shared members over the smaller of the two segments, so both "this
    segment lies inside that one" and "that one lies inside this" are found. One
    pass over the arrays of this segment's members counts every other segment.
    """
    members_sql, params = (
        CustomerSegmentState.objects.filter(segment_ids__includes=segment.pk)
        .values("customer_id")
        .query.sql_with_params()
    )
    elements, element_id = ids_elements_sql("s.segment_ids", connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT {element_id}, COUNT(*)
            FROM {CustomerSegmentState._meta.db_table} s, {elements}
            WHERE s.customer_id IN ({members_sql})
            GROUP BY {element_id}
            """,
            params,
        )
        shared = dict(cursor.fetchall())
    own_size = shared.pop(segment.pk, 0)
    if not own_size:
        return []
    sizes = dict(
        Segment.objects.filter(pk__in=list(shared), is_active=True).values_list(
            "pk", "size"
        )
    )
    shares = {
        pk: shared[pk] / min(own_size, size)
        for pk, size in sizes.items()
        if size and shared[pk] / min(own_size, size) >= threshold
    }
    if not shares:
        return []
    others = Segment.objects.in_bulk(list(shares))
    return sorted(
        ((others[pk], share) for pk, share in shares.items()),
        key=lambda pair: (-pair[1], pair[0].name),
    )


def customer_export_sections(*, customer: Customer) -> dict[str, Any]:
    """`customer_data_export_sections` receiver: the customer's segments."""
    state = CustomerSegmentState.objects.filter(customer=customer).first()
    segment_ids = state.segment_ids if state else []
    return {
        "segments": sorted(
            Segment.objects.filter(pk__in=segment_ids).values_list("slug", flat=True)
        )
    }


def run_personas(*, run: str) -> QuerySet[EvaluationRow]:
    """(customer_id, persona_id) of every customer a whole-base run rewrote: the
    persona its rules chose, or None. For `run_personas_evaluated` receivers."""
    return EvaluationRow.objects.filter(run=run).values("customer_id", "persona_id")
