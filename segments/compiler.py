"""Checks a rule tree and compiles it into one ORM condition on `Customer`.

The whole-base pass, the incremental pass, previews and explanations all use
`rule_condition`, so they cannot disagree about who matches.
"""

import dataclasses
import difflib
import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db.models import Case, Expression, Field, Q, TextField, Value, When
from django.db.models.functions import Cast
from django.utils import timezone

from . import hooks
from .fields import FIELDS, REFERENCES, Context, FieldSpec, PersonaRule, RuleError
from .query import MAX_DEPTH, OPERATOR_ORDER, operator_text

GROUPS = ("all", "any")
# `all` of nothing is true; every customer has a primary key.
ALWAYS = Q(pk__isnull=False)


def did_you_mean(name: str, known: Collection[str]) -> str:
    """ "did you mean 'x'?" for the known names closest to `name`, or ""."""
    close = difflib.get_close_matches(name, sorted(known), n=3)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


_NAME_FIX = {
    "field": "see the list of fields in the rule help",
    "category": "use the slug of an existing category",
    "tag": "use the slug of an existing tag",
    "persona": "use the slug of an active persona",
    "segment": "use the slug of an existing segment",
}


def _unknown(kind: str, name: Any, known: Collection[str]) -> str:
    hint = did_you_mean(name, known) if isinstance(name, str) else ""
    fix = REFERENCES[kind].fix if kind in REFERENCES else _NAME_FIX[kind]
    return f"unknown {kind} {name!r}; {hint or fix}"


class _Names(dict):
    """Slugs of the categories, tags, active personas and the kinds apps add
    (`fields.REFERENCES`), each loaded when met."""

    def __missing__(self, kind: str) -> frozenset[str]:
        from crm.models import Category, Tag

        if kind in REFERENCES:
            names = frozenset(REFERENCES[kind].load())
        elif kind == "persona":
            names = frozenset(p.slug for p in persona_rules_load())
        else:
            model = Category if kind == "category" else Tag
            names = frozenset(model.objects.values_list("slug", flat=True))
        self[kind] = names
        return names


def _referenced(spec: FieldSpec, value: Any) -> list[str]:
    if isinstance(value, bool):
        return []  # is_set
    if isinstance(value, dict):
        return [value[spec.argument]]
    return list(value) if isinstance(value, list) else [value]


def rule_check(
    rule: Any,
    *,
    segment_rules: Mapping[str, dict] | None = None,
    own_slug: str | None = None,
    path: str = "",
    allow_persona: bool = True,
    typed: bool = False,
    names: Mapping[str, Collection[str]] | None = None,
    depth: int = 0,
) -> dict:
    """Validate a rule tree and return it with normalised values.

    `segment_rules` maps the slugs of existing segments to their rules, for nested
    `segment` conditions; `own_slug` is the segment being saved, to refuse cycles.
    A persona's own rule is checked with `allow_persona=False`: it may not depend on
    the persona field, directly or through a segment, since that would be circular.
    `typed` says the rule was parsed from a query, so messages spell operators as
    the query did (">" rather than "gt"). `names` maps "category", "tag",
    "persona" and the kinds in `fields.REFERENCES` to the slugs that exist; by
    default they are read when a rule names one. An unknown name of any kind is
    an error, with the closest known names.
    """
    segment_rules = segment_rules or {}
    names = _Names() if names is None else names
    if depth > MAX_DEPTH:
        # The same bound as the query language's: nothing deeper is a real rule, and
        # compiling it would exhaust the stack.
        where = path if len(path) <= 40 else f"{path[:40]}..."
        raise RuleError(
            where, f"rules may nest at most {MAX_DEPTH} levels deep; simplify this one"
        )
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
                        allow_persona=allow_persona,
                        typed=typed,
                        names=names,
                        depth=depth + 1,
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
                allow_persona=allow_persona,
                typed=typed,
                names=names,
                depth=depth + 1,
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
        raise RuleError(_join(path, "field"), _unknown("field", name, FIELDS))

    def spell(op: Any) -> str:
        return operator_text(op) if typed else repr(op)

    if op not in spec.ops:
        if typed:
            usable = [operator_text(o) for o in _operator_order(spec.ops)]
        else:
            hint = did_you_mean(op, spec.ops) if isinstance(op, str) else ""
            usable = [repr(o) for o in _operator_order(spec.ops)]
        message = f"{name} does not support {spell(op)}; use {', '.join(usable)}"
        if not typed and hint:
            message += f" ({hint})"
        raise RuleError(_join(path, "op"), message)
    try:
        checked = spec.check_value(op, value) if spec.check_value else value
    except ValueError as exc:
        raise RuleError(_join(path, "value"), f"{name} {spell(op)}: {exc}") from None
    if name == "persona" and not allow_persona:
        raise RuleError(
            _join(path, "field"), "a persona rule cannot depend on personas"
        )
    if spec.refers_to:
        known = names[spec.refers_to]
        for slug in _referenced(spec, checked):
            if slug not in known:
                raise RuleError(
                    _join(path, "value"), _unknown(spec.refers_to, slug, known)
                )
    if name == "segment":
        for slug in checked:
            if slug not in segment_rules and slug != own_slug:
                raise RuleError(
                    _join(path, "value"), _unknown("segment", slug, segment_rules)
                )
        if own_slug is not None:
            _refuse_cycle(own_slug, checked, segment_rules, _join(path, "value"))
        if not allow_persona:
            for slug in checked:
                if rule_uses_persona(segment_rules.get(slug, {}), segment_rules):
                    raise RuleError(
                        _join(path, "value"),
                        f"segment {slug!r} uses the persona field, so a persona "
                        "rule cannot use it",
                    )
    return {"field": name, "op": op, "value": checked}


def _operator_order(ops: Collection[str]) -> list[str]:
    rank = {op: index for index, op in enumerate(OPERATOR_ORDER)}
    return sorted(ops, key=lambda op: (rank.get(op, len(rank)), op))


def rule_uses_persona(
    rule: Any, segment_rules: Mapping[str, dict], seen: frozenset[str] = frozenset()
) -> bool:
    """Whether a rule tests the persona field, directly or in nested segments."""
    if not isinstance(rule, dict):
        return False
    if "field" in rule:
        if rule.get("field") == "persona":
            return True
        if rule.get("field") == "segment":
            return any(
                rule_uses_persona(segment_rules.get(s, {}), segment_rules, seen | {s})
                for s in rule["value"]
                if s not in seen
            )
        return False
    if "not" in rule:
        return rule_uses_persona(rule["not"], segment_rules, seen)
    return any(
        rule_uses_persona(child, segment_rules, seen)
        for group in GROUPS
        for child in rule.get(group, [])
    )


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
    nested = dataclasses.replace(ctx, stack=(*ctx.stack, slug))
    return rule_condition(inner, nested)


# Personas --------------------------------------------------------------------------

# On the stack while persona rules compile: a `persona` leaf met there (through a
# segment changed after the persona was saved) is "no persona" instead of a loop.
PERSONA_MARK = "@personas"


def _personas(ctx: Context) -> Sequence[PersonaRule]:
    if ctx.personas is None:
        # Loaded on first use, so compiles that never meet `persona` cost nothing.
        ctx.personas = persona_rules_load()
    return ctx.personas


def persona_case(
    ctx: Context,
    *,
    label: Callable[[PersonaRule], Any],
    default: Any = None,
    output_field: Field | None = None,
) -> Expression:
    """One CASE giving each customer's persona: the first matching persona rule in
    assignment order (largest priority, then lowest id), as `label(persona)`, a
    text unless `output_field` says otherwise."""
    output_field = output_field or TextField()
    personas = _personas(ctx)
    if not personas or PERSONA_MARK in ctx.stack:
        return Cast(Value(default), output_field=output_field)
    inner = dataclasses.replace(ctx, stack=(*ctx.stack, PERSONA_MARK))
    return Case(
        *[When(rule_condition(p.rules, inner), then=Value(label(p))) for p in personas],
        default=Value(default),
        output_field=output_field,
    )


def persona_time_candidates(ctx: Context) -> list:
    """Moments at which any persona rule may flip, so the assignment may change."""
    if PERSONA_MARK in ctx.stack:
        return []
    inner = dataclasses.replace(ctx, stack=(*ctx.stack, PERSONA_MARK))
    return [c for p in _personas(ctx) for c in rule_time_candidates(p.rules, inner)]


def persona_rules_load() -> tuple[PersonaRule, ...]:
    """The active personas in assignment order, from the `persona_rules` hook."""
    return tuple(rule for rules in hooks.persona_rules.send() for rule in rules)


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
                dataclasses.replace(ctx, stack=(*ctx.stack, slug)),
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
    *,
    now: datetime | None = None,
    segment_rules: Mapping[str, dict] | None = None,
    personas: Sequence[PersonaRule] | None = None,
    customer_ids: tuple[int, int] | None = None,
) -> Context:
    """A compile context for `now`, with stored RFM thresholds and active segments.

    When a segment rule or a given persona rule uses an RFM field, thresholds are
    computed first if missing (see `rfm_thresholds_current`).
    Active personas are loaded when a rule first needs them, unless given.
    `customer_ids` is the id range of a whole-base pass: subqueries are cut to it.
    """
    from .models import Segment
    from .services.rfm import rfm_thresholds_current, rfm_thresholds_latest

    now = now or timezone.now()
    if segment_rules is None:
        segment_rules = dict(
            Segment.objects.filter(is_active=True).values_list("slug", "rules")
        )
    rules = [*segment_rules.values(), *(p.rules for p in personas or ())]
    # Only then: computing thresholds changes every stored rules version.
    uses_rfm = '"rfm_' in json.dumps(rules)
    return Context(
        now=now,
        today=timezone.localdate(now),
        rfm=(rfm_thresholds_current(now=now) if uses_rfm else rfm_thresholds_latest()),
        segment_rules=segment_rules,
        personas=tuple(personas) if personas is not None else None,
        customer_ids=customer_ids,
    )
