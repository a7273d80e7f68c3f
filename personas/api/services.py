"""The persona API's writes: thin calls into personas.services."""

from typing import Any

from django.db import transaction

from ..models import Persona
from ..services import persona_create, persona_delete, persona_update


@transaction.atomic
def api_persona_create(*, data: dict[str, Any]) -> Persona:
    return persona_create(**data)


@transaction.atomic
def api_persona_update(*, persona: Persona, data: dict[str, Any]) -> Persona:
    # The slug is the persona's identity (rules and links name it): it stays.
    data = dict(data)
    data.pop("slug", None)
    return persona_update(persona=persona, **data)


@transaction.atomic
def api_persona_delete(*, persona: Persona) -> None:
    persona_delete(persona=persona)
