"""Links in campaign email: one-click unsubscribe, the open pixel, click redirects.

Each link carries a token signed with django.core.signing, salted per purpose
so an open token cannot be replayed as an unsubscribe. A token holds the
delivery's id only (and, for a click, the target URL), never personal data: the
delivery says who the customer is. Everything a link records goes through the
CRM's services, so the segment engine re-evaluates the customer
(`email_opens_30d`, "unsubscribed recently") in the same transaction.
"""

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from crm.models import Channel, Consent, Contact, Customer
from crm.querysets import CONSENT_NEWEST_FIRST
from crm.services import consent_record, contact_record

from .models import Delivery

logger = logging.getLogger(__name__)

UNSUBSCRIBE_SALT = "campaigns.tracking.unsubscribe"
OPEN_SALT = "campaigns.tracking.open"
CLICK_SALT = "campaigns.tracking.click"

# What the ledger keeps as the wording of a withdrawal, by how it was made.
WORDING_ONE_CLICK = (
    "Unsubscribed from marketing email with the mail program's one-click "
    "unsubscribe (RFC 8058) in campaign %(campaign)s."
)
WORDING_PAGE = (
    '"Stop receiving our marketing email?" Unsubscribe (the page linked from the '
    "email of campaign %(campaign)s)."
)


class BadToken(Exception):
    """A tracking link whose signature does not match, or whose delivery is gone."""


# Tokens ------------------------------------------------------------------------------


def delivery_token(*, delivery_id: int, salt: str) -> str:
    return signing.dumps(delivery_id, salt=salt)


def click_token(*, delivery_id: int, url: str) -> str:
    return signing.dumps([delivery_id, url], salt=CLICK_SALT, compress=True)


def delivery_token_read(token: str, *, salt: str) -> int:
    try:
        delivery_id = signing.loads(token, salt=salt)
    except signing.BadSignature:
        raise BadToken from None
    if not isinstance(delivery_id, int):
        raise BadToken
    return delivery_id


def click_token_read(token: str) -> tuple[int, str]:
    try:
        value = signing.loads(token, salt=CLICK_SALT)
    except signing.BadSignature:
        raise BadToken from None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int)
        or not isinstance(value[1], str)
        or not value[1].startswith(("https://", "http://"))
    ):
        raise BadToken
    return value[0], value[1]


# Links -------------------------------------------------------------------------------


def _absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


@dataclass(frozen=True)
class TrackingLinks:
    """The absolute tracking URLs of one delivery (settings.PUBLIC_BASE_URL)."""

    delivery_id: int
    unsubscribe_url: str
    open_pixel_url: str

    def click_url(self, target: str) -> str:
        """A redirect to `target` (http or https) that records the click first."""
        token = click_token(delivery_id=self.delivery_id, url=target)
        return _absolute(reverse("campaigns:click", args=[token]))


def tracking_links(*, delivery_id: int) -> TrackingLinks:
    unsubscribe = delivery_token(delivery_id=delivery_id, salt=UNSUBSCRIBE_SALT)
    pixel = delivery_token(delivery_id=delivery_id, salt=OPEN_SALT)
    return TrackingLinks(
        delivery_id=delivery_id,
        unsubscribe_url=_absolute(reverse("campaigns:unsubscribe", args=[unsubscribe])),
        open_pixel_url=_absolute(reverse("campaigns:open", args=[pixel])),
    )


# Recording ---------------------------------------------------------------------------


def _delivery(delivery_id: int) -> Delivery:
    delivery = (
        Delivery.objects.select_related("customer", "campaign")
        .filter(pk=delivery_id)
        .first()
    )
    if delivery is None:
        raise BadToken
    return delivery


def _payload(delivery: Delivery, **extra: Any) -> dict[str, Any]:
    # What segment rules on "opened / clicked campaign X" look at.
    return {
        "campaign": delivery.campaign_id,
        "delivery": delivery.pk,
        "message": delivery.message_id,
        **extra,
    }


def _contact_record(delivery: Delivery, *, kind: str, **extra: Any) -> bool:
    try:
        contact_record(
            customer=delivery.customer,
            kind=kind,
            channel=Contact.ContactChannel.EMAIL,
            payload=_payload(delivery, **extra),
        )
    except ValidationError:
        # An erased customer: the link still works, nothing new is kept.
        return False
    return True


@transaction.atomic
def email_open_record(*, token: str) -> bool:
    """Record an `email_open` for the pixel's delivery; every load counts.

    Raises BadToken for a forged token; False when nothing was recorded.
    """
    delivery = _delivery(delivery_token_read(token, salt=OPEN_SALT))
    return _contact_record(delivery, kind=Contact.Kind.EMAIL_OPEN)


@transaction.atomic
def email_click_record(*, token: str) -> str:
    """Record an `email_click` with the URL; return the URL to redirect to.

    Only the signed URL is ever returned, so the redirect is no open redirect.
    """
    delivery_id, url = click_token_read(token)
    _contact_record(_delivery(delivery_id), kind=Contact.Kind.EMAIL_CLICK, url=url)
    return url


def click_target(*, token: str) -> str:
    """The signed URL of a click link, recording nothing (a HEAD request)."""
    delivery_id, url = click_token_read(token)
    _delivery(delivery_id)
    return url


def unsubscribe_token_check(token: str) -> None:
    """Raise BadToken unless `token` is an unsubscribe link of a delivery."""
    _delivery(delivery_token_read(token, salt=UNSUBSCRIBE_SALT))


@transaction.atomic
def email_unsubscribe(*, token: str, one_click: bool) -> bool:
    """Withdraw the delivery's customer's email consent and record an
    `unsubscribe` contact; True when a withdrawal was written.

    A customer whose email consent is not granted (already withdrawn, or erased)
    gets nothing written, so a repeated POST adds no second withdrawal.
    """
    delivery = _delivery(delivery_token_read(token, salt=UNSUBSCRIBE_SALT))
    # The customer's row lock serialises two POSTs of the same link (a mail
    # program's one-click and the person's own click) so only one withdraws.
    customer = Customer.objects.select_for_update().get(pk=delivery.customer_id)
    if customer.erased_at is not None:
        return False
    current = (
        Consent.objects.filter(customer=customer, channel=Channel.EMAIL)
        .order_by(*CONSENT_NEWEST_FIRST)
        .values_list("status", flat=True)
        .first()
    )
    if current != Consent.Status.GRANTED:
        return False
    wording = WORDING_ONE_CLICK if one_click else WORDING_PAGE
    consent_record(
        customer=customer,
        channel=Channel.EMAIL,
        granted=False,
        source=Consent.Source.EMAIL_LINK,
        wording=wording % {"campaign": delivery.campaign.name},
    )
    delivery.customer = customer
    _contact_record(delivery, kind=Contact.Kind.UNSUBSCRIBE, one_click=one_click)
    logger.info(
        "email consent withdrawn by unsubscribe link: delivery_id=%s", delivery.pk
    )
    return True
