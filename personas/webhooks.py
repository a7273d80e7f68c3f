"""Webhook events of personas: persona.changed."""

from collections.abc import Iterable
from typing import Any

from crm.models import Customer
from crm.webhooks.models import WebhookEvent
from crm.webhooks.services import webhook_events_emit, webhook_subscriptions_for

from .models import Persona


def persona_changes_emit(*, changes: Iterable[Any]) -> int:
    """Emit persona.changed for PersonaChange rows (or objects with customer_id,
    from_persona_id, to_persona_id, cause and occurred_at).

    `changes` may be a queryset; it is only evaluated when someone subscribes.
    Payloads name the personas by slug (null for none) and carry the customer's
    id and email.
    """
    subscriptions = webhook_subscriptions_for(WebhookEvent.PERSONA_CHANGED)
    if not subscriptions:
        return 0
    rows = list(changes)
    if not rows:
        return 0
    slugs = dict(Persona.objects.values_list("pk", "slug"))
    emails = dict(
        Customer.objects.filter(pk__in={row.customer_id for row in rows}).values_list(
            "pk", "email"
        )
    )
    return webhook_events_emit(
        event=WebhookEvent.PERSONA_CHANGED,
        payloads=[
            {
                "customer": {
                    "id": row.customer_id,
                    "email": emails.get(row.customer_id),
                },
                "from": slugs.get(row.from_persona_id),
                "to": slugs.get(row.to_persona_id),
                "cause": row.cause,
                "occurred_at": row.occurred_at,
            }
            for row in rows
        ],
        subscriptions=subscriptions,
    )
