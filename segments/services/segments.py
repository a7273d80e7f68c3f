from typing import Any

from django.db import connection, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from crm.errors import field_error
from crm.models import Channel

from .. import hooks
from ..compiler import rule_check, segment_references
from ..fields import RuleError
from ..models import Segment
from ..query import QuerySyntaxError, parse


def rules_from_input(
    *,
    rules: Any = None,
    query: str | None = None,
    own_slug: str | None = None,
    allow_persona: bool = True,
) -> dict:
    """Checked rules from a JSON tree or a text query (exactly one of them).

    A persona's rule passes `allow_persona=False`: it may not depend on personas.
    """
    if (rules is None) == (query is None):
        raise field_error(
            "rules",
            _("Give the rule either as JSON (rules) or as text (query)."),
            "rules_or_query",
        )
    if query is not None:
        try:
            rules = parse(query)
        except QuerySyntaxError as exc:
            raise field_error("query", str(exc), "syntax") from None
    segment_rules = dict(Segment.objects.values_list("slug", "rules"))
    try:
        return rule_check(
            rules,
            segment_rules=segment_rules,
            own_slug=own_slug,
            allow_persona=allow_persona,
            typed=query is not None,
        )
    except RuleError as exc:
        raise field_error(
            "query" if query is not None else "rules", str(exc), "invalid_rule"
        ) from None


def channel_preference_check(channels: Any) -> list[str]:
    """An ordered list of campaign channels, each once."""
    if not isinstance(channels, list | tuple) or any(
        c not in Channel.values for c in channels
    ):
        raise field_error(
            "channel_preference",
            _("List channels in order of preference, from: %(choices)s."),
            "invalid_channel",
            choices=", ".join(Channel.values),
        )
    return list(dict.fromkeys(channels))


def recompute_later() -> None:
    """Recompute every segment's members once the transaction commits.

    One whole-base pass evaluates every segment and persona, so however many
    changes a transaction makes (an admin action on ten personas, say), it starts
    one pass.
    """
    if connection.in_atomic_block and any(
        entry[1] is _recompute_start for entry in connection.run_on_commit
    ):
        return
    transaction.on_commit(_recompute_start)


def _recompute_start() -> None:
    from ..tasks import segments_recompute_task

    segments_recompute_task.delay()


@transaction.atomic
def segment_create(
    *,
    name: str,
    rules: Any = None,
    query: str | None = None,
    slug: str | None = None,
    description: str = "",
    kind: str = Segment.Kind.OTHER,
    is_active: bool = True,
    channel_preference: list[str] | None = None,
) -> Segment:
    """Create a segment and start computing its members once committed."""
    slug = slugify(slug or name)
    if not slug:
        raise field_error("slug", _("Give the segment a name or slug."), "required")
    if Segment.objects.filter(slug=slug).exists():
        raise field_error(
            "slug", _("A segment with slug %(slug)s exists."), "slug_taken", slug=slug
        )
    segment = Segment(
        name=name,
        slug=slug,
        description=description,
        kind=kind,
        rules=rules_from_input(rules=rules, query=query, own_slug=slug),
        is_active=is_active,
        channel_preference=channel_preference_check(channel_preference or []),
    )
    segment.full_clean()
    segment.save()
    recompute_later()
    return segment


@transaction.atomic
def segment_update(
    *, segment: Segment, rules: Any = None, query: str | None = None, **fields: Any
) -> Segment:
    """Change a segment; a changed rule or activity recomputes its members."""
    allowed = {"name", "description", "kind", "is_active", "channel_preference"}
    if set(fields) - allowed:
        raise TypeError(f"segment_update() got unknown fields {set(fields) - allowed}")
    recompute = False
    if rules is not None or query is not None:
        new_rules = rules_from_input(rules=rules, query=query, own_slug=segment.slug)
        recompute = new_rules != segment.rules
        segment.rules = new_rules
    if "is_active" in fields and fields["is_active"] != segment.is_active:
        recompute = True
    if "channel_preference" in fields:
        fields["channel_preference"] = channel_preference_check(
            fields["channel_preference"]
        )
    for name, value in fields.items():
        setattr(segment, name, value)
    segment.full_clean()
    segment.save()
    if not segment.is_active:
        _members_clear(segment)
    if recompute:
        recompute_later()
    return segment


def _members_clear(segment: Segment) -> None:
    """A deactivated segment has no members, at once and for every reader.

    Reads skip inactive segments, and the recompute this starts drops the id from
    the customers' arrays. Leaving is the segment's change, not the customers', so
    no history row is written per member; reactivating builds the segment anew.
    """
    Segment.objects.filter(pk=segment.pk).update(size=0, built_at=None)
    segment.size, segment.built_at = 0, None


@transaction.atomic
def segment_deactivate(*, segment: Segment) -> Segment:
    """Stop maintaining a segment; its members leave it."""
    if segment.is_active:
        segment_update(segment=segment, is_active=False)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment) -> None:
    """Delete a segment and its history, unless a rule still refers to it.

    Another segment's or a persona's rule that names it must change first (the
    error names them). The customers' arrays lose its id in the recompute this
    starts; until then readers skip it, as they skip an inactive segment.
    """
    slug = segment.slug
    users = sorted(
        f"segment {other.slug}"
        for other in Segment.objects.exclude(pk=segment.pk).only("slug", "rules")
        if slug in segment_references(other.rules)
    ) + sorted(
        name
        for names in hooks.segment_references_found.send(slug=slug)
        for name in names
    )
    if users:
        raise field_error(
            "segment",
            _("%(slug)s is used by the rules of %(users)s; change those first."),
            "segment_in_use",
            slug=slug,
            users=", ".join(users),
        )
    was_active = segment.is_active
    segment.delete()
    if was_active:
        recompute_later()
