"""Social audiences: on an ad platform a message is a place in an audience.

Sending a `social_ads` delivery adds the customer to the campaign run's audience:
a row of SHA-256 hashes of their normalised email address and phone number, the
form Meta's custom audiences and Google's Customer Match take. Only customers
whose current `social_ads` consent is a grant are added. Nothing else about the
customer leaves Loyalist.

Normalisation before hashing (both platforms' rules):

- email: surrounding whitespace trimmed, lowercased;
- phone: E.164 with the country code (a number stored without one is read in
  PHONENUMBER_DEFAULT_REGION), then digits only, without the "+" (Meta). Set
  CAMPAIGN_AUDIENCE_PHONE_PLUS for Google, which hashes the "+" too.

A missing value is an empty cell, never the hash of an empty string (which would
match every other empty value on the platform).

The development backend appends each batch's rows to
CAMPAIGN_OUTBOX_DIR/audiences/<campaign-slug>-<run-key>.csv. The audience itself
is the run's sent `social_ads` deliveries: `audience_csv(run)` streams it for a
download, and when a run finishes `audience_announce(run=run)` tells webhook
subscribers to `audience.ready` where to fetch it (campaign, run, row count and a
signed download link; no personal data).
"""

import contextlib
import hashlib
import os
import re
import tempfile
from collections import defaultdict
from collections.abc import Iterator

import phonenumbers
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.http import urlencode

from campaigns.models import Delivery
from crm.models import Channel, Consent
from crm.webhooks.models import WebhookEvent
from crm.webhooks.services import webhook_events_emit

from . import ChannelBackend, Outcome, Outgoing
from .consent import deliveries_still_reachable, delivery_consent_current
from .outbox import outbox_append_lines, outbox_path

CSV_HEADER = "email_sha256,phone_sha256"
DOWNLOAD_SALT = "campaigns.audience"
ROWS_CHUNK = 2000


def normalised_email(email: str | None) -> str:
    return (email or "").strip().lower()


def normalised_phone(phone: object, *, plus: bool | None = None) -> str:
    """E.164 digits (with the "+" when `plus`); "" for no or an unreadable number."""
    text = str(phone or "").strip()
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return ""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    with_plus = settings.CAMPAIGN_AUDIENCE_PHONE_PLUS if plus is None else plus
    return e164 if with_plus else e164.removeprefix("+")


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest() if value else ""


def audience_hashes(
    email: str | None, phone: object, *, plus: bool | None = None
) -> tuple[str, str]:
    """(SHA-256 hex of the normalised email, of the normalised phone); "" for a
    missing one."""
    return (
        _sha256(normalised_email(email)),
        _sha256(normalised_phone(phone, plus=plus)),
    )


def audience_name(*, campaign_slug: str, run_key: str) -> str:
    """The audience's file name stem: campaign slug and run key, file-safe."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{campaign_slug}-{run_key}").strip("-")


def _audience_file(name: str):
    """The run's audience file, created with its header line if new.

    The header is linked into place with the file (write a temporary file, then
    link it), so a worker appending rows never finds the file without it.
    """
    path = outbox_path("audiences", f"{name}.csv")
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".new-")
        try:
            os.write(fd, (CSV_HEADER + "\n").encode())
            os.close(fd)
            # Another worker may have created it first, with the same header.
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            os.unlink(temporary)
    return path


class AudienceBackend(ChannelBackend):
    """Development (and upload-by-hand) audiences: rows appended to a CSV file."""

    channel = Channel.SOCIAL_ADS

    def send(self, messages: list[Outgoing]) -> list[Outcome]:
        # One query for the batch: what to hash, and whether it still may be.
        found = {
            pk: rest
            for pk, *rest in Delivery.objects.filter(
                pk__in=[message.delivery_id for message in messages]
            )
            .annotate(current_consent=delivery_consent_current(self.channel))
            .values_list(
                "pk",
                "campaign__slug",
                "run__key",
                "customer__email",
                "customer__phone",
                "customer__erased_at",
                "current_consent",
            )
        }
        decided: dict[int, Outcome] = {}
        lines: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for message in messages:
            row = found.get(message.delivery_id)
            if row is None:
                decided[message.delivery_id] = Outcome(
                    sent=False, error="No such delivery", permanent=True
                )
                continue
            slug, key, email, phone, erased_at, consent = row
            if erased_at is not None or consent != Consent.Status.GRANTED:
                decided[message.delivery_id] = Outcome(
                    sent=False,
                    error="No current consent to social media audiences",
                    permanent=True,
                )
                continue
            hashes = audience_hashes(email, phone)
            if not any(hashes):
                decided[message.delivery_id] = Outcome(
                    sent=False,
                    error="No email address or phone number to match on",
                    permanent=True,
                )
                continue
            name = audience_name(campaign_slug=slug, run_key=key)
            lines[name].append((message.delivery_id, ",".join(hashes)))
        for name, rows in lines.items():
            try:
                outbox_append_lines(_audience_file(name), [line for _pk, line in rows])
            except OSError as exc:
                outcome = Outcome(sent=False, error=f"Audience file: {exc}"[:300])
            else:
                outcome = Outcome(sent=True, provider_message_id=f"audience:{name}")
            for delivery_id, _line in rows:
                decided[delivery_id] = outcome
        return [decided[message.delivery_id] for message in messages]

    def run_finished(self, run) -> None:
        audience_announce(run=run)


def _audience_rows(run):
    return deliveries_still_reachable(
        Delivery.objects.filter(
            run=run, channel=Channel.SOCIAL_ADS, status=Delivery.Status.SENT
        ),
        Channel.SOCIAL_ADS,
    )


def audience_csv(run) -> Iterator[str]:
    """The run's audience as CSV lines (header first), streamed from one query.

    The run's sent `social_ads` deliveries whose customer still grants the
    channel and was not erased, in delivery order.
    """
    yield CSV_HEADER + "\n"
    rows = (
        _audience_rows(run)
        .order_by("pk")
        .values_list("customer__email", "customer__phone")
        .iterator(chunk_size=ROWS_CHUNK)
    )
    for email, phone in rows:
        hashes = audience_hashes(email, phone)
        if any(hashes):
            yield ",".join(hashes) + "\n"


def audience_download_signature(run) -> str:
    return signing.TimestampSigner(salt=DOWNLOAD_SALT).sign(str(run.pk))


def audience_download_signature_valid(*, run_id: int, signature: str) -> bool:
    """Whether `signature` is a download link's for this run and not expired."""
    try:
        value = signing.TimestampSigner(salt=DOWNLOAD_SALT).unsign(
            signature, max_age=settings.CAMPAIGN_AUDIENCE_LINK_DAYS * 86400
        )
    except signing.BadSignature:
        return False
    return value == str(run_id)


def audience_download_url(run) -> str:
    """An absolute link to the run's audience CSV that works without signing in
    for CAMPAIGN_AUDIENCE_LINK_DAYS (for the platform's sync job)."""
    path = reverse("campaign-exports:audience-csv", args=[run.pk])
    query = urlencode({"signature": audience_download_signature(run)})
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}{path}?{query}"


def audience_announce(*, run) -> int:
    """Tell `audience.ready` subscribers that the run's audience can be fetched;
    returns the deliveries queued (none for an empty audience or no subscriber).

    Call once the run finished sending, inside the transaction that records it.
    """
    rows = _audience_rows(run).count()
    if not rows:
        return 0
    return webhook_events_emit(
        event=WebhookEvent.AUDIENCE_READY,
        payloads=[
            {
                "campaign": run.campaign.slug,
                "run": run.key,
                "rows": rows,
                "url": audience_download_url(run),
            }
        ],
    )
