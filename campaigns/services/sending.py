"""Sending: claim due deliveries in batches, hand them to the channel, record it.

A worker claims a batch (`FOR UPDATE SKIP LOCKED`, so workers never share a row)
and marks it `sending` with a lease in the same short transaction. Consent, erasure
and the frequency cap are checked again at that moment: a withdrawal since planning
stops the message. The batch is rendered and handed to the channel's backend once;
each outcome is written back in one transaction with the contacts it means.

A worker that dies between the claim and the write-back leaves `sending` rows
behind; once their lease has passed they become `unknown` and are never resent by
themselves, because a duplicate is worse than a miss. So does a send the backend
cannot vouch for either way (the connection lost while the server's reply to the
message was awaited, an exception mid-batch): its row is `unknown` with the
reason in `error`. A marketer resends them
deliberately (`deliveries_resend_unknown`). Pausing a campaign stops its claims;
resuming carries on with the rows still planned, never from the top.
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery
from django.utils import timezone

from crm.models import Contact, Customer, PushToken
from crm.services.contacts import contacts_record_many

from ..channels import Outcome, Outgoing, backend_for
from ..channels.email import email_outgoing
from ..models import Campaign, CampaignChange, CampaignRun, Delivery
from ..personalisation import MessageRenderError, customer_contexts, message_render
from ..quiet_hours import quiet_hours_end
from .planning import QUIET_CHANNELS

logger = logging.getLogger(__name__)

# Campaign statuses whose deliveries workers may claim.
SENDING_STATUSES = (Campaign.Status.SENDING, Campaign.Status.ACTIVE)
DUE_STATUSES = (Delivery.Status.PLANNED, Delivery.Status.DEFERRED)

CONTACT_CHANNELS = {
    "email": Contact.ContactChannel.EMAIL,
    "sms": Contact.ContactChannel.SMS,
    "push": Contact.ContactChannel.APP,
    "social_ads": Contact.ContactChannel.SOCIAL,
    "post": Contact.ContactChannel.POST,
}


def due_deliveries(*, now: datetime, channel: str | None = None):
    queryset = Delivery.objects.filter(
        status__in=DUE_STATUSES,
        planned_at__lte=now,
        campaign__status__in=SENDING_STATUSES,
    )
    if channel:
        queryset = queryset.filter(channel=channel)
    return queryset


def due_channels(
    *,
    now: datetime,
    run: CampaignRun | None = None,
    planned_since: datetime | None = None,
) -> list[str]:
    """The channels with deliveries due by `now` (of `run`, planned for
    `planned_since` or later), for which senders should start."""
    queryset = due_deliveries(now=now)
    if run is not None:
        queryset = queryset.filter(run=run)
    if planned_since is not None:
        queryset = queryset.filter(planned_at__gte=planned_since)
    return sorted(set(queryset.order_by().values_list("channel", flat=True)))


def _reachable_now(channel: str) -> Exists:
    """The delivery's customer may get `channel` now (correlated, so a batch
    looks up its own customers rather than the whole base)."""
    return Exists(
        Customer.objects.filter(pk=OuterRef("customer_id"), erased_at__isnull=True)
        .with_reach([channel])
        .filter(**{f"{channel}_reachable": True})
    )


def _over_cap(claimed, now: datetime) -> list[int]:
    """The claimed rows whose customer already received as many marketing
    messages as their campaign's cap allows within its window before now: one
    query per campaign of the batch (a batch holds a few)."""
    over = []
    campaigns = Campaign.objects.filter(pk__in=claimed.values("campaign")).only(
        "frequency_cap", "frequency_window_days"
    )
    for campaign in campaigns:
        cap = campaign.frequency_cap or settings.CAMPAIGN_FREQUENCY_CAP
        window = timedelta(
            days=campaign.frequency_window_days
            or settings.CAMPAIGN_FREQUENCY_WINDOW_DAYS
        )
        recent = (
            Delivery.objects.filter(
                customer=OuterRef("customer"),
                status=Delivery.Status.SENT,
                sent_at__gt=now - window,
            )
            .order_by()
            .values("customer")
            .annotate(n=Count("pk"))
            .values("n")
        )
        over += (
            claimed.filter(campaign=campaign)
            .alias(recent=Subquery(recent, output_field=IntegerField()))
            .filter(recent__gte=cap)
            .values_list("pk", flat=True)
        )
    return over


@transaction.atomic
def deliveries_claim(
    *, channel: str, limit: int, now: datetime | None = None
) -> list[int]:
    """Claim up to `limit` due deliveries of `channel` for this worker: mark them
    `sending` under a lease, after skipping those that may no longer go."""
    now = now or timezone.now()
    ids = list(
        due_deliveries(now=now, channel=channel)
        .select_for_update(skip_locked=True, of=("self",))
        .order_by("planned_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return []
    claimed = Delivery.objects.filter(pk__in=ids)
    claimed.exclude(_reachable_now(channel)).update(
        status=Delivery.Status.SKIPPED,
        reason=f"{channel}: consent withdrawn or address gone before sending",
    )
    claimed.filter(status__in=DUE_STATUSES, pk__in=_over_cap(claimed, now)).update(
        status=Delivery.Status.SKIPPED,
        reason="frequency cap reached before sending",
    )
    lease = now + timedelta(seconds=settings.CAMPAIGN_LEASE_SECONDS)
    claimed.filter(status__in=DUE_STATUSES).update(
        status=Delivery.Status.SENDING, lease_until=lease, attempts=F("attempts") + 1
    )
    return list(
        claimed.filter(status=Delivery.Status.SENDING).values_list("id", flat=True)
    )


def _address(delivery: Delivery, tokens: dict[int, str]) -> str:
    customer = delivery.customer
    channel = delivery.channel
    if channel == "email":
        return customer.email or ""
    if channel == "sms":
        return str(customer.phone)
    if channel == "push":
        return tokens.get(customer.pk, "")
    if channel == "social_ads":
        return customer.email or str(customer.phone)
    return "\n".join(
        part
        for part in (
            customer.full_name,
            customer.address,
            f"{customer.postal_code} {customer.city}".strip(),
            customer.country,
        )
        if part
    )


def _outgoing(delivery: Delivery, context: dict, tokens: dict[int, str]) -> Outgoing:
    address = _address(delivery, tokens)
    if delivery.channel == "email":
        return email_outgoing(
            delivery=delivery,
            message=delivery.message,
            customer_context=context,
            address=address,
        )
    rendered = message_render(message=delivery.message, context=context)
    return Outgoing(
        delivery_id=delivery.pk,
        customer_id=delivery.customer_id,
        channel=delivery.channel,
        address=address,
        subject=rendered.subject,
        body_text=rendered.text,
    )


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0


def _retry_at(delivery: Delivery, now: datetime) -> datetime:
    """After a backoff that doubles per attempt, and never in the customer's quiet
    hours on the channels they apply to."""
    retry = now + timedelta(minutes=2**delivery.attempts)
    if delivery.channel not in QUIET_CHANNELS:
        return retry
    store = delivery.customer.home_store
    zone = ZoneInfo(store.time_zone if store else settings.TIME_ZONE)
    return quiet_hours_end(retry, zone)


def _contact(delivery: Delivery, kind: str, now: datetime, error: str = "") -> Contact:
    payload = {
        "campaign": delivery.campaign_id,
        "delivery": delivery.pk,
        "message": delivery.message_id,
    }
    if error:
        payload["error"] = error[:300]
    return Contact(
        customer_id=delivery.customer_id,
        kind=kind,
        channel=CONTACT_CHANNELS[delivery.channel],
        occurred_at=now,
        payload=payload,
    )


# What an outcome changes on a row, besides the provider's message id.
OUTCOME_FIELDS = ("status", "sent_at", "error", "planned_at", "lease_until")


@transaction.atomic
def outcomes_record(
    *, deliveries: list[Delivery], outcomes: dict[int, Outcome], now: datetime
) -> BatchResult:
    """Write what became of a batch, with a contact for every message received."""
    result = BatchResult()
    contacts = []
    for delivery in deliveries:
        outcome = outcomes[delivery.pk]
        delivery.lease_until = None
        if outcome.sent:
            delivery.status = Delivery.Status.SENT
            delivery.sent_at = now
            delivery.provider_message_id = outcome.provider_message_id[:200]
            delivery.error = ""
            result.sent += 1
            contacts.append(_contact(delivery, Contact.Kind.MESSAGE_RECEIVED, now))
        elif outcome.unknown:
            # It may have gone: like a lost lease, only a person resends it.
            delivery.status = Delivery.Status.UNKNOWN
            delivery.error = outcome.error[:300]
            result.unknown += 1
        elif outcome.permanent or delivery.attempts >= settings.CAMPAIGN_MAX_ATTEMPTS:
            delivery.status = Delivery.Status.FAILED
            delivery.error = outcome.error[:300]
            result.failed += 1
            if outcome.permanent and delivery.channel == "email":
                # The receiving server refused the address: a bounce, which
                # segments can count like any other contact.
                contacts.append(
                    _contact(delivery, Contact.Kind.EMAIL_BOUNCE, now, outcome.error)
                )
        else:
            delivery.status = Delivery.Status.PLANNED
            delivery.planned_at = _retry_at(delivery, now)
            delivery.error = outcome.error[:300]
            result.retried += 1
    # A row whose lease passed meanwhile was reported unknown; the outcome the
    # worker did learn replaces that. Rows with the same outcome (usually the
    # whole batch: sent) share one UPDATE; only the provider's ids differ row by
    # row (bulk_update over every field builds a CASE per row and field).
    same: dict[tuple, list[int]] = defaultdict(list)
    for delivery in deliveries:
        same[tuple(getattr(delivery, name) for name in OUTCOME_FIELDS)].append(
            delivery.pk
        )
    for values, pks in same.items():
        Delivery.objects.filter(pk__in=pks).update(
            **dict(zip(OUTCOME_FIELDS, values, strict=True))
        )
    Delivery.objects.bulk_update(
        [delivery for delivery in deliveries if delivery.provider_message_id],
        ["provider_message_id"],
    )
    contacts_record_many(contacts=contacts)
    return result


def rate_wait(channel: str, count: int) -> None:
    """Hold the worker until `count` more messages fit in this second's budget of
    the channel, shared by all workers through the cache."""
    limit = settings.CAMPAIGN_RATE_LIMITS.get(channel)
    if not limit:
        return
    while True:
        second = int(time.time())
        key = f"campaign-rate:{channel}:{second}"
        cache.add(key, 0, timeout=5)
        used = cache.incr(key, count)
        # A batch alone over the limit (only when the batch size is set larger
        # than the rate by hand) goes rather than waiting for ever.
        if used <= limit or used == count:
            return
        time.sleep(max(0.0, second + 1 - time.time()))


def batch_send(*, channel: str, limit: int | None = None) -> BatchResult | None:
    """Claim, render, send and record one batch; None when nothing was due."""
    limit = limit or settings.CAMPAIGN_BATCH_SIZE
    # A batch never exceeds the channel's rate, so rate_wait can hold it to it.
    rate = settings.CAMPAIGN_RATE_LIMITS.get(channel)
    if rate:
        limit = min(limit, rate)
    ids = deliveries_claim(channel=channel, limit=limit)
    if not ids:
        return None
    deliveries = list(
        Delivery.objects.filter(pk__in=ids)
        .select_related("customer", "customer__home_store", "message")
        .order_by("id")
    )
    customer_ids = [d.customer_id for d in deliveries]
    contexts = customer_contexts(customer_ids)
    tokens = {}
    if channel == "push":
        # The newest live token of each customer.
        for customer_id, token in (
            PushToken.objects.filter(
                customer_id__in=customer_ids, revoked_at__isnull=True
            )
            .order_by("customer_id", "registered_at", "id")
            .values_list("customer_id", "token")
        ):
            tokens[customer_id] = token
    outcomes: dict[int, Outcome] = {}
    ready: list[Outgoing] = []
    for delivery in deliveries:
        try:
            ready.append(
                _outgoing(delivery, contexts.get(delivery.customer_id, {}), tokens)
            )
        except MessageRenderError as error:
            outcomes[delivery.pk] = Outcome(
                sent=False, error=str(error), permanent=True
            )
    rate_wait(channel, len(ready))
    if ready:
        try:
            sent = backend_for(channel).send(ready)
        except Exception as exc:
            # The backend broke off somewhere in the batch: any of its messages
            # may have gone.
            logger.exception("%s backend failed mid-batch", channel)
            error = f"the {channel} backend failed mid-batch ({type(exc).__name__}); "
            error += "the message may have gone"
            sent = [Outcome(sent=False, error=error, unknown=True)] * len(ready)
        for outgoing, outcome in zip(ready, sent, strict=True):
            outcomes[outgoing.delivery_id] = outcome
    return outcomes_record(deliveries=deliveries, outcomes=outcomes, now=timezone.now())


def channel_drain(*, channel: str, seconds: float = 50.0) -> int:
    """Send batches of `channel` until none is due or `seconds` have passed; return
    how many messages went."""
    started = time.monotonic()
    sent = 0
    while time.monotonic() - started < seconds:
        result = batch_send(channel=channel)
        if result is None:
            break
        sent += result.sent
    return sent


def leases_expire(*, now: datetime | None = None) -> int:
    """Rows whose worker's lease passed: their outcome is unknown."""
    now = now or timezone.now()
    return Delivery.objects.filter(
        status=Delivery.Status.SENDING, lease_until__lt=now
    ).update(
        status=Delivery.Status.UNKNOWN,
        lease_until=None,
        error="the worker stopped before reporting; the message may have gone",
    )


@transaction.atomic
def deliveries_resend_unknown(*, campaign: Campaign, user) -> int:
    """Plan the campaign's `unknown` deliveries again, because a person decided
    a possible duplicate is better than a possible miss."""
    unknown = Delivery.objects.filter(campaign=campaign, status=Delivery.Status.UNKNOWN)
    runs = list(unknown.values_list("run", flat=True).distinct())
    count = unknown.update(
        status=Delivery.Status.PLANNED, planned_at=timezone.now(), error=""
    )
    if count:
        # Workers claim only for running campaigns and runs_finish closes runs
        # with nothing due: a finished one-off send is reopened for these rows.
        CampaignRun.objects.filter(
            pk__in=runs, status=CampaignRun.Status.FINISHED
        ).update(status=CampaignRun.Status.SENDING, finished_at=None)
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENT).update(
            status=Campaign.Status.SENDING
        )
        CampaignChange.objects.create(
            campaign=campaign,
            changed_by=user,
            action="resend_unknown",
            details={"deliveries": count},
        )
    return count


def runs_finish(*, now: datetime | None = None) -> int:
    """Mark runs with nothing left to send finished, and one-off campaigns whose
    run finished sent."""
    now = now or timezone.now()
    open_statuses = (CampaignRun.Status.PLANNED, CampaignRun.Status.SENDING)
    with transaction.atomic():
        # Runs a trigger consume is adding rows to are locked by it and left for
        # the next tick; the rows are counted only once the locks are held, so
        # every consume committed before is seen.
        locked = list(
            CampaignRun.objects.filter(status__in=open_statuses)
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        pending = Delivery.objects.filter(
            run__in=locked, status__in=(*DUE_STATUSES, Delivery.Status.SENDING)
        ).values("run")
        finished = list(
            CampaignRun.objects.filter(pk__in=locked)
            .exclude(pk__in=pending)
            .select_related("campaign")
        )
        count = CampaignRun.objects.filter(pk__in=[run.pk for run in finished]).update(
            status=CampaignRun.Status.FINISHED, finished_at=now
        )
        Campaign.objects.filter(
            kind=Campaign.Kind.ONE_OFF, status=Campaign.Status.SENDING
        ).exclude(Q(runs__status__in=open_statuses)).update(status=Campaign.Status.SENT)
    for run in finished:
        # Channels that deliver a whole run at once (a social audience) hear
        # that it is complete.
        for channel in settings.CAMPAIGN_CHANNEL_BACKENDS:
            backend_for(channel).run_finished(run)
    return count
