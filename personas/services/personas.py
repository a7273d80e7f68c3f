"""Create, change and remove personas; every change that can move customers
between personas starts a whole-base recompute once it commits."""

from typing import Any

from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from crm.errors import field_error
from segments.services.segments import recompute_later, rules_from_input

from ..models import Persona

# What staff may set through persona_update besides the rule.
TRAIT_FIELDS = frozenset(
    {
        "name",
        "title",
        "avatar",
        "photo_url",
        "status",
        "priority",
        "age_min",
        "age_max",
        "gender",
        "job_title",
        "family_situation",
        "income_band",
        "location",
        "web_savviness",
        "research",
        "buying_channels",
        "purchases_per_month",
        "typical_basket",
        "brand_loyalty",
        "goals",
        "pain_points",
        "values",
        "buying_role",
        "social_influence",
        "service_needs",
        "preferred_channels",
        "message_tone",
        "notes",
        "sources",
        "source_notes",
        "suggestion",
    }
)
# Fields whose change can move customers from one persona to another.
MATCHING_FIELDS = frozenset({"status", "priority"})


def persona_rules_from_input(*, rules: Any = None, query: str | None = None) -> dict:
    """A checked persona rule from JSON or a text query (exactly one of them).

    Like a segment rule, except that it may not depend on personas itself.
    """
    return rules_from_input(rules=rules, query=query, allow_persona=False)


def _traits_check(fields: dict[str, Any]) -> None:
    unknown = set(fields) - TRAIT_FIELDS
    if unknown:
        raise TypeError(f"unknown persona fields {sorted(unknown)}")


@transaction.atomic
def persona_create(
    *,
    name: str,
    rules: Any = None,
    query: str | None = None,
    slug: str | None = None,
    recompute: bool = True,
    **traits: Any,
) -> Persona:
    """Create a persona; an active one starts matching customers once committed.

    `recompute=False` is for callers that run the whole-base pass themselves (the
    demo seed, before `rebuild_segments`).
    """
    _traits_check(traits)
    slug = slugify(slug or name)
    if not slug:
        raise field_error("slug", _("Give the persona a name or slug."), "required")
    if Persona.objects.filter(slug=slug).exists():
        raise field_error(
            "slug", _("A persona with slug %(slug)s exists."), "slug_taken", slug=slug
        )
    persona = Persona(
        name=name,
        slug=slug,
        rules=persona_rules_from_input(rules=rules, query=query),
        **traits,
    )
    persona.full_clean()
    persona.save()
    if recompute and persona.status == Persona.Status.ACTIVE:
        recompute_later()
    return persona


@transaction.atomic
def persona_update(
    *, persona: Persona, rules: Any = None, query: str | None = None, **fields: Any
) -> Persona:
    """Change a persona; a change of rule, priority or status recomputes who
    matches which persona."""
    _traits_check(fields)
    was_active = persona.status == Persona.Status.ACTIVE
    recompute = False
    if rules is not None or query is not None:
        new_rules = persona_rules_from_input(rules=rules, query=query)
        recompute = new_rules != persona.rules
        persona.rules = new_rules
    for name in MATCHING_FIELDS & set(fields):
        recompute = recompute or fields[name] != getattr(persona, name)
    for name, value in fields.items():
        setattr(persona, name, value)
    persona.full_clean()
    persona.save()
    if recompute and (was_active or persona.status == Persona.Status.ACTIVE):
        recompute_later()
    return persona


@transaction.atomic
def persona_delete(*, persona: Persona) -> None:
    """Delete a persona; its customers move to their next matching persona."""
    was_active = persona.status == Persona.Status.ACTIVE
    persona.delete()
    if was_active:
        recompute_later()
