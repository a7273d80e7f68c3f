"""Checks a rule tree and compiles it into one ORM condition on `Customer`.

The whole-base pass, the incremental pass, previews and explanations all use
`rule_condition`, so they cannot disagree about who matches.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.db.models import Q
from django.utils import timezone

from .fields import FIELDS, Context, RuleError

GROUPS = ("all", "any")
# `all` of nothing is true; every customer has a primary key.
ALWAYS = Q(pk__isnull=False)


def rule_check(
    rule: Any,
    *,
    segment_rules: Mapping[str, dict] | None = None,
    own_slug: str | None = None,
    path: str = "",
) -> dict:
    """Validate a rule tree and return it with normalised values.

    `segment_rules` maps the slugs of existing segments to their rules, for nested
    `segment` conditions; `own_slug` is the segment being saved, to refuse cycles.
    """
    segment_rules = segment_rules or {}
    if not isinstance(rule, dict):
        raise RuleError(path, 'a rule is an object such as {"all": [...]}')
    keys = set(rule)
    for group in GROUPS:
        if keys == {group}:
            children = rule[group]
            if not isinstance(children, list):
                raise RuleError(_join(path, group), f"{group} takes a list of rules")
            return {
                group: [
                    rule_check(
                        child,
                        segment_rules=segment_rules,
                        own_slug=own_slug,
                        path=_join(path, f"{group}[{index}]"),
                    )
                    for index, child in enumerate(children)
                ]
            }
    if keys == {"not"}:
        return {
            "not": rule_check(
                rule["not"],
                segment_rules=segment_rules,
                own_slug=own_slug,
                path=_join(path, "not"),
            )
        }
    if keys != {"field", "op", "value"}:
        raise RuleError(
            path,
            'expected {"all": [...]}, {"any": [...]}, {"not": ...} or '
            '{"field": ..., "op": ..., "value": ...}',
        )
    name, op, value = rule["field"], rule["op"], rule["value"]
    spec = FIELDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise RuleError(
            _join(path, "field"),
            f"unknown field {name!r}; known fields: {', '.join(sorted(FIELDS))}",
        )
    if op not in spec.ops:
        raise RuleError(
            _join(path, "op"),
            f"{name} does not support {op!r}; use one of {', '.join(sorted(spec.ops))}",
        )
    try:
        checked = spec.check_value(op, value) if spec.check_value else value
    except ValueError as exc:
        raise RuleError(_join(path, "value"), f"{name} {op}: {exc}") from None
    if name == "segment":
        for slug in checked:
            if slug not in segment_rules and slug != own_slug:
                raise RuleError(_join(path, "value"), f"no segment with slug {slug!r}")
        if own_slug is not None:
            _refuse_cycle(own_slug, checked, segment_rules, _join(path, "value"))
    return {"field": name, "op": op, "value": checked}


def _refuse_cycle(
    own_slug: str, slugs: list[str], segment_rules: Mapping[str, dict], path: str
) -> None:
    seen: set[str] = set()
    pending = list(slugs)
    while pending:
        slug = pending.pop()
        if slug == own_slug:
            raise RuleError(path, f"segment {own_slug!r} would contain itself")
        if slug in seen:
            continue
        seen.add(slug)
        pending.extend(segment_references(segment_rules.get(slug, {})))


def segment_references(rule: Any) -> list[str]:
    """Slugs of the segments a rule refers to, directly."""
    if not isinstance(rule, dict):
        return []
    if "field" in rule:
        return list(rule["value"]) if rule.get("field") == "segment" else []
    if "not" in rule:
        return segment_references(rule["not"])
    return [
        slug
        for group in GROUPS
        for child in rule.get(group, [])
        for slug in segment_references(child)
    ]


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path and not part.startswith("[") else path + part


def rule_condition(rule: dict, ctx: Context) -> Q:
    """The ORM condition for a checked rule; true or false for every customer."""
    if "all" in rule:
        condition = ALWAYS
        for child in rule["all"]:
            condition &= rule_condition(child, ctx)
        return condition
    if "any" in rule:
        condition = Q(pk__in=[])
        for child in rule["any"]:
            condition |= rule_condition(child, ctx)
        return condition
    if "not" in rule:
        return ~rule_condition(rule["not"], ctx)
    if rule["field"] == "segment":
        member = Q(pk__in=[])
        for slug in rule["value"]:
            member |= _segment_condition(slug, ctx)
        return member if rule["op"] == "in" else ~member
    return FIELDS[rule["field"]].condition(ctx, rule["op"], rule["value"])


def _segment_condition(slug: str, ctx: Context) -> Q:
    # Nested segments are inlined, so a pass never depends on another segment's
    # stored members and no evaluation order between segments is needed.
    if slug in ctx.stack:
        raise RuleError("value", f"segment {slug!r} refers to itself")
    inner = ctx.segment_rules.get(slug)
    if inner is None:
        return Q(pk__in=[])  # inactive or deleted: nobody is a member
    nested = Context(
        now=ctx.now,
        today=ctx.today,
        rfm=ctx.rfm,
        segment_rules=ctx.segment_rules,
        stack=(*ctx.stack, slug),
    )
    return rule_condition(inner, nested)


def rule_time_candidates(rule: dict, ctx: Context) -> list:
    """Expressions for the moments at which the rule's truth may change by itself."""
    if "all" in rule or "any" in rule:
        group = rule.get("all", rule.get("any"))
        return [c for child in group for c in rule_time_candidates(child, ctx)]
    if "not" in rule:
        return rule_time_candidates(rule["not"], ctx)
    if rule["field"] == "segment":
        return [
            candidate
            for slug in rule["value"]
            if slug in ctx.segment_rules and slug not in ctx.stack
            for candidate in rule_time_candidates(
                ctx.segment_rules[slug],
                Context(
                    ctx.now, ctx.today, ctx.rfm, ctx.segment_rules, (*ctx.stack, slug)
                ),
            )
        ]
    spec = FIELDS[rule["field"]]
    if spec.time_candidates is None:
        return []
    return spec.time_candidates(ctx, rule["op"], rule["value"])


def rule_uses_age(rule: dict, segment_rules: Mapping[str, dict]) -> bool:
    if "all" in rule or "any" in rule:
        return any(
            rule_uses_age(c, segment_rules) for c in rule.get("all", rule.get("any"))
        )
    if "not" in rule:
        return rule_uses_age(rule["not"], segment_rules)
    if rule["field"] == "segment":
        return any(
            rule_uses_age(segment_rules.get(s, {"all": []}), segment_rules)
            for s in rule["value"]
        )
    return rule["field"] == "age"


def context_build(
    *, now: datetime | None = None, segment_rules: Mapping[str, dict] | None = None
) -> Context:
    """A compile context for `now`, with stored RFM thresholds and active segments."""
    from .models import RfmThresholds, Segment

    now = now or timezone.now()
    if segment_rules is None:
        segment_rules = dict(
            Segment.objects.filter(is_active=True).values_list("slug", "rules")
        )
    return Context(
        now=now,
        today=timezone.localdate(now),
        rfm=RfmThresholds.objects.order_by("-computed_at", "-id").first(),
        segment_rules=segment_rules,
    )
