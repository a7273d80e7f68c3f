"""Webhook events of the segment engine: segment.entered and segment.exited."""

from collections.abc import Iterable
from typing import Any

from crm.models import Customer
from crm.webhooks.models import WebhookEvent
from crm.webhooks.services import webhook_events_emit, webhook_subscriptions_by_event

from .models import Segment


def segment_slugs() -> list[str]:
    """`webhook_segment_slugs` receiver: every segment a subscription may name."""
    return list(Segment.objects.values_list("slug", flat=True))


def segment_events_emit(*, events: Iterable[Any]) -> int:
    """Emit segment.entered / segment.exited for SegmentEvent rows (or objects
    with segment_id, customer_id, kind, cause and occurred_at).

    `events` may be a queryset; it is only evaluated when someone subscribes to
    segment events. Payloads name the segment by slug and carry the customer's id
    and email.
    """
    # Read once for both events (the drain emits after every batch).
    subscriptions = webhook_subscriptions_by_event(
        WebhookEvent.SEGMENT_ENTERED, WebhookEvent.SEGMENT_EXITED
    )
    entered = subscriptions[WebhookEvent.SEGMENT_ENTERED]
    exited = subscriptions[WebhookEvent.SEGMENT_EXITED]
    if not entered and not exited:
        return 0
    rows = list(events)
    if not rows:
        return 0
    slugs = dict(Segment.objects.values_list("pk", "slug"))
    emails = dict(
        Customer.objects.filter(pk__in={row.customer_id for row in rows}).values_list(
            "pk", "email"
        )
    )
    by_kind: dict[str, list[dict]] = {"entered": [], "exited": []}
    for row in rows:
        by_kind[row.kind].append(
            {
                "segment": slugs.get(row.segment_id),
                "customer": {
                    "id": row.customer_id,
                    "email": emails.get(row.customer_id),
                },
                "cause": row.cause,
                "occurred_at": row.occurred_at,
            }
        )
    return webhook_events_emit(
        event=WebhookEvent.SEGMENT_ENTERED,
        payloads=by_kind["entered"],
        subscriptions=entered,
    ) + webhook_events_emit(
        event=WebhookEvent.SEGMENT_EXITED,
        payloads=by_kind["exited"],
        subscriptions=exited,
    )
