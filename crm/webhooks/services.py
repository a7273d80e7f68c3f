"""Webhooks: events become signed deliveries, posted and retried with backoff.

`webhook_events_emit` is called inside the transaction that caused the events. It
writes one WebhookDelivery per subscription and batch of events, so the deliveries
commit (or roll back) with the change, and enqueues their first attempt once the
transaction commits. A failed attempt is logged and scheduled again with
exponential backoff; `webhook_deliveries_retry_due` (run by beat) picks the due
ones up, so retries hours apart never sit in the broker.

Each POST carries the JSON body

    {"id": <delivery id>, "event": "receipt.created", "created_at": "...",
     "data": [<event>, ...]}

signed with the subscription's secret: the `X-Loyalist-Signature` header is
`sha256=` followed by the hex HMAC-SHA256 of the exact body bytes.
"""

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import field_error

from . import guard
from .models import (
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
    webhook_secret_generate,
)

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Loyalist-Signature"
EVENTS_PER_DELIVERY = 100
TIMEOUT_SECONDS = 5
MAX_ATTEMPTS = 10
# Waits after attempt 1, 2, ...: 30 s, 1, 2, 4, 8 minutes ... capped at 2 hours,
# about 8 hours in all before a delivery is given up.
BACKOFF_FACTOR = 30
BACKOFF_MAX = 2 * 3600
# The receiver's answer kept in the log, for debugging their side.
LOGGED_ERROR_CHARS = 500


def webhook_signature(secret: str, body: bytes) -> str:
    """The value of the signature header for `body`."""
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def backoff_seconds(attempts: int) -> int:
    """Seconds to wait after the `attempts`-th failed attempt."""
    return min(BACKOFF_FACTOR * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def webhook_subscriptions_by_event(
    *events: str,
) -> dict[str, list[WebhookSubscription]]:
    """The active subscriptions to each of `events` (for `subscriptions=` of the
    emitters).

    Every sale and every drain batch asks, and most events have no subscriber: the
    events of the active subscriptions are read in one written-out query (a tenth of
    the cost of the ORM's), and the subscriptions themselves only when one wants
    one of `events`.
    """
    events_field = WebhookSubscription._meta.get_field("events")
    asked = set(events)
    wanted: dict[int, set[str]] = {}
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, {events_field.column} "  # noqa: S608 - names from the model
            f"FROM {WebhookSubscription._meta.db_table} WHERE is_active"
        )
        for pk, value in cursor.fetchall():
            subscribed = asked & set(
                events_field.from_db_value(value, None, connection)
            )
            if subscribed:
                wanted[pk] = subscribed
    loaded = (
        list(WebhookSubscription.objects.filter(pk__in=wanted).order_by("pk"))
        if wanted
        else []
    )
    return {event: [s for s in loaded if event in wanted[s.pk]] for event in events}


def webhook_subscriptions_for(event: str) -> list[WebhookSubscription]:
    """The active subscriptions to `event`."""
    return webhook_subscriptions_by_event(event)[event]


def _enqueue(delivery_ids: list[int]) -> None:
    from .tasks import webhook_deliver_task

    for delivery_id in delivery_ids:
        try:
            webhook_deliver_task.delay(delivery_id)
        except Exception:
            # The delivery is committed; the retry sweep sends it.
            logger.warning("Could not enqueue webhook delivery %s", delivery_id)


def customer_payload(customer: Any) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "email": customer.email,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "source": customer.source,
        "home_store": customer.home_store.code if customer.home_store else None,
        "created_at": customer.created_at,
    }


def receipt_payload(receipt: Any) -> dict[str, Any]:
    return {
        "id": receipt.pk,
        "number": receipt.number,
        "store": receipt.store.code,
        "customer": receipt.customer_id,
        "loyalty_card": receipt.loyalty_card.number if receipt.loyalty_card else None,
        "channel": receipt.channel,
        "purchased_at": receipt.purchased_at,
        "total": receipt.total,
        "currency": receipt.currency,
        "points_earned": receipt.points_earned,
    }


def customer_created_emit(*, customer: Any) -> None:
    """Queue customer.created for subscribers (reads nothing when there are none)."""
    webhook_events_emit(
        event=WebhookEvent.CUSTOMER_CREATED,
        payloads=(customer_payload(c) for c in [customer]),
    )


def receipt_created_emit(
    *, receipt: Any, subscriptions: list[WebhookSubscription] | None = None
) -> None:
    """Queue receipt.created for subscribers (reads nothing when there are none)."""
    webhook_events_emit(
        event=WebhookEvent.RECEIPT_CREATED,
        payloads=(receipt_payload(r) for r in [receipt]),
        subscriptions=subscriptions,
    )


def customer_erased_emit(*, customer_id: int, erased_at: datetime) -> None:
    """Queue customer.erased: receivers delete what they keep about the customer."""
    webhook_events_emit(
        event=WebhookEvent.CUSTOMER_ERASED,
        payloads=[{"id": customer_id, "erased_at": erased_at}],
    )


# Personal fields of the customers named in event payloads.
PERSONAL_PAYLOAD_KEYS = ("email", "first_name", "last_name")


# Events whose payloads carry a customer's email or names.
PERSONAL_EVENTS = frozenset(
    {
        WebhookEvent.CUSTOMER_CREATED,
        WebhookEvent.SEGMENT_ENTERED,
        WebhookEvent.SEGMENT_EXITED,
        WebhookEvent.PERSONA_CHANGED,
    }
)


def _body_scrub(body: dict[str, Any], customer_ids: set[int]) -> bool:
    """Blank the personal fields of these customers in a delivery body; whether
    anything changed."""
    touched = False
    for payload in body.get("data", []):
        if _customer_of(payload) not in customer_ids:
            continue
        customer = payload.get("customer")
        person = customer if isinstance(customer, dict) else payload
        for key in PERSONAL_PAYLOAD_KEYS:
            if person.get(key) is not None:
                person[key] = None
                touched = True
    return touched


def webhook_deliveries_scrub(*, customer_id: int) -> int:
    """Blank the customer's personal fields in the delivery log; returns how many
    deliveries changed.

    Pending deliveries would otherwise send what was erased; sent ones are the
    receivers' to delete (customer.erased tells them), and our log of them must
    not keep it either. A retry signs the body as it then is.
    """
    changed = []
    mentioning = WebhookDelivery.objects.filter(
        event__in=PERSONAL_EVENTS, body__contains=f'"id": {customer_id}'
    )
    for delivery in mentioning:
        body = json.loads(delivery.body)
        if _body_scrub(body, {customer_id}):
            delivery.body = json.dumps(body)
            changed.append(delivery)
    WebhookDelivery.objects.bulk_update(changed, ["body"])
    return len(changed)


def _erased_scrub(delivery: WebhookDelivery) -> None:
    """Before sending: blank customers erased since the delivery was queued (an
    emitter that read their email just before the erasure committed)."""
    from crm.models import Customer

    if delivery.event not in PERSONAL_EVENTS:
        return
    body = json.loads(delivery.body)
    named = {_customer_of(payload) for payload in body.get("data", [])} - {None}
    erased = set(
        Customer.objects.filter(pk__in=named, erased_at__isnull=False).values_list(
            "pk", flat=True
        )
    )
    if erased and _body_scrub(body, erased):
        delivery.body = json.dumps(body)
        delivery.save(update_fields=["body"])


def _customer_of(payload: dict[str, Any]) -> int | None:
    """The id of the customer a payload is about (every event names one or none)."""
    customer = payload.get("customer")
    if isinstance(customer, dict):
        return customer.get("id")
    if customer is not None:
        return customer  # receipt.created: the customer's id
    return payload.get("id") if "email" in payload else None  # customer.created


def _consents_granted(
    *, customer_ids: set[int], channels: set[str]
) -> set[tuple[int, str]]:
    """(customer id, channel) pairs whose current consent entry is a grant."""
    from crm.models import Consent

    if not customer_ids or not channels:
        return set()
    return set(
        Consent.objects.filter(customer_id__in=customer_ids, channel__in=channels)
        .latest_per_channel()
        .filter(status=Consent.Status.GRANTED)
        .values_list("customer_id", "channel")
    )


# Events every subscriber hears whatever its consent channel: they carry nothing
# personal, and a receiver that markets must act on them (an ad platform deletes
# an erased customer; it uploads an audience, whose rows are consented already).
CONSENT_EXEMPT_EVENTS = frozenset(
    {WebhookEvent.CUSTOMER_ERASED, WebhookEvent.AUDIENCE_READY}
)


def webhook_events_emit(
    *,
    event: str,
    payloads: Iterable[dict[str, Any]],
    subscriptions: list[WebhookSubscription] | None = None,
) -> int:
    """Queue `payloads` (one dict per event) for every active subscription to
    `event`; returns the number of deliveries created.

    Call it inside the transaction that made the change. `payloads` is only read
    when someone subscribes, so a lazy iterable costs nothing otherwise. A
    subscription limited to some segments gets only the segment events whose
    payload's "segment" is one of them. `subscriptions` are those of
    `webhook_subscriptions_for(event)` when the caller read them already.
    """
    if event not in WebhookEvent.values:
        raise ValueError(f"Unknown webhook event {event!r}")
    if subscriptions is None:
        subscriptions = webhook_subscriptions_for(event)
    if not subscriptions:
        return 0
    if any(subscription.consent_channel for subscription in subscriptions):
        payloads = list(payloads)
        granted = _consents_granted(
            customer_ids={_customer_of(p) for p in payloads} - {None},
            channels={s.consent_channel for s in subscriptions} - {""},
        )
    else:
        granted = set()
    now = timezone.now()
    deliveries: list[WebhookDelivery] = []
    batches: dict[int, list[dict]] = {s.pk: [] for s in subscriptions}

    def flush(subscription: WebhookSubscription) -> None:
        batch = batches[subscription.pk]
        if not batch:
            return
        deliveries.append(
            WebhookDelivery(
                subscription=subscription,
                event=event,
                body=json.dumps(
                    {"event": event, "created_at": now, "data": batch},
                    cls=DjangoJSONEncoder,
                ),
                next_attempt_at=now,
                created_at=now,
            )
        )
        batches[subscription.pk] = []

    for payload in payloads:
        for subscription in subscriptions:
            if (
                subscription.segments
                and event.startswith("segment.")
                and payload.get("segment") not in subscription.segments
            ):
                continue
            if (
                subscription.consent_channel
                and event not in CONSENT_EXEMPT_EVENTS
                and (_customer_of(payload), subscription.consent_channel) not in granted
            ):
                # The receiver markets on a channel this customer did not agree
                # to (or the event concerns no customer): it hears nothing of it.
                continue
            batches[subscription.pk].append(payload)
            if len(batches[subscription.pk]) >= EVENTS_PER_DELIVERY:
                flush(subscription)
    for subscription in subscriptions:
        flush(subscription)
    if not deliveries:
        return 0
    created = WebhookDelivery.objects.bulk_create(deliveries)
    ids = [delivery.pk for delivery in created if delivery.pk is not None]
    if len(ids) != len(created):
        # Backends that do not return ids from a bulk insert: the sweep sends them.
        ids = []
    transaction.on_commit(lambda: _enqueue(ids))
    return len(created)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    try:
        with guard.opener().open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(LOGGED_ERROR_CHARS).decode(errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}"[:LOGGED_ERROR_CHARS]


def webhook_delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> str:
    """POST a pending delivery once and log the outcome; returns its new status.

    The row is locked for the attempt, so two workers never send it at once; a
    delivery that is not pending, or not yet due, is left alone.
    """
    now = now or timezone.now()
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("subscription")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return "skipped"
        if delivery.next_attempt_at and delivery.next_attempt_at > now:
            return "not_due"
        subscription = delivery.subscription
        _erased_scrub(delivery)
        body = delivery.body.encode()
        started = time.monotonic()
        status_code, error = _post(
            subscription.url,
            body,
            {
                "Content-Type": "application/json",
                "User-Agent": "Loyalist-Webhooks/1",
                SIGNATURE_HEADER: webhook_signature(subscription.secret, body),
                "X-Loyalist-Event": delivery.event,
                "X-Loyalist-Delivery": str(delivery.pk),
                "X-Loyalist-Attempt": str(delivery.attempts + 1),
            },
        )
        delivery.attempts += 1
        delivery.last_status_code = status_code
        delivery.attempt_log = [
            *delivery.attempt_log,
            {
                "at": now.isoformat(),
                "status_code": status_code,
                "error": error,
                "ms": round((time.monotonic() - started) * 1000),
            },
        ]
        if status_code is not None and 200 <= status_code < 300:
            delivery.status = WebhookDelivery.Status.DELIVERED
            delivery.delivered_at = now
            delivery.next_attempt_at = None
        elif delivery.attempts >= MAX_ATTEMPTS or not subscription.is_active:
            delivery.status = WebhookDelivery.Status.FAILED
            delivery.next_attempt_at = None
        else:
            delivery.next_attempt_at = now + timedelta(
                seconds=backoff_seconds(delivery.attempts)
            )
        delivery.save(
            update_fields=[
                "attempts",
                "last_status_code",
                "attempt_log",
                "status",
                "delivered_at",
                "next_attempt_at",
            ]
        )
    logger.info(
        "webhook delivery %s attempt %s: status=%s -> %s",
        delivery.pk,
        delivery.attempts,
        status_code,
        delivery.status,
    )
    return delivery.status


def webhook_deliveries_due(
    *, now: datetime | None = None, limit: int = 500
) -> list[int]:
    """Ids of pending deliveries whose next attempt is due."""
    now = now or timezone.now()
    return list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_deliveries_retry_due(*, now: datetime | None = None) -> int:
    """Attempt every due delivery once; returns how many were attempted."""
    ids = webhook_deliveries_due(now=now)
    for delivery_id in ids:
        webhook_delivery_attempt(delivery_id=delivery_id, now=now)
    return len(ids)


def _events_check(events: Sequence[str]) -> list[str]:
    unknown = sorted(set(events) - set(WebhookEvent.values))
    if unknown or not events:
        raise field_error(
            "events",
            _("Subscribe to one or more of %(choices)s."),
            "invalid_choice",
            choices=", ".join(WebhookEvent.values),
        )
    return sorted(set(events))


def _url_check(url: str) -> None:
    # A DNS lookup: callers run it before they write, outside any transaction of
    # their own (a subscription is one row, saved in one statement).
    address = guard.private_address_of(url)
    if address is not None:
        raise field_error(
            "url",
            _(
                "%(url)s points at %(address)s, which is not a public address; "
                "webhooks are delivered to the public internet only."
            ),
            "private_address",
            url=url,
            address=address,
        )


# What a subscriber chooses; the rest (secret, owner, dates) Loyalist sets.
SUBSCRIPTION_FIELDS = (
    "name",
    "url",
    "events",
    "segments",
    "consent_channel",
    "is_active",
)


def webhook_subscription_create(
    *,
    name: str,
    url: str,
    events: Sequence[str],
    segments: Sequence[str] = (),
    is_active: bool = True,
    owner: AbstractBaseUser | None = None,
    consent_channel: str = "",
) -> WebhookSubscription:
    """Subscribe a URL to events; the signing secret is generated.

    With `consent_channel` (for example "social_ads" for an ad platform), events
    about customers without a current grant on that channel are never sent.
    """
    _url_check(url)
    subscription = WebhookSubscription(
        name=name,
        url=url,
        events=_events_check(events),
        segments=sorted(set(segments)),
        is_active=is_active,
        owner=owner,
        consent_channel=consent_channel,
    )
    subscription.full_clean(exclude=["owner"])
    subscription.save()
    return subscription


def webhook_subscription_update(
    *, subscription: WebhookSubscription, **fields: Any
) -> WebhookSubscription:
    unknown = set(fields) - set(SUBSCRIPTION_FIELDS)
    if unknown:
        raise TypeError(f"Unknown fields {sorted(unknown)}")
    if "url" in fields:
        _url_check(fields["url"])
    if "events" in fields:
        fields["events"] = _events_check(fields["events"])
    if "segments" in fields:
        fields["segments"] = sorted(set(fields["segments"]))
    for name, value in fields.items():
        setattr(subscription, name, value)
    subscription.full_clean(exclude=["owner"])
    subscription.save(update_fields=[*fields])
    return subscription


@transaction.atomic
def webhook_subscription_secret_rotate(
    *, subscription: WebhookSubscription
) -> WebhookSubscription:
    subscription.secret = webhook_secret_generate()
    subscription.save(update_fields=["secret"])
    return subscription


@transaction.atomic
def webhook_subscription_delete(*, subscription: WebhookSubscription) -> None:
    """Remove a subscription with its delivery log."""
    subscription.delete()
