"""The email receipt: built from templates, sent by a task after the sale commits.

A receipt's `email_status` is "pending" from the moment an email is asked for until
the task has sent it ("sent") or given up ("failed"). The sale itself never depends
on the email: sending happens after commit, in a Celery task.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from crm.models import Channel, Customer, Product, Receipt
from crm.tasks import receipt_email_send_task

logger = logging.getLogger(__name__)

# Seconds to wait for the SMTP server when settings.EMAIL_TIMEOUT is not set: a
# hung server must not hold a worker (or, in embedded mode, the till) for ever.
DEFAULT_EMAIL_TIMEOUT = 10
SUGGESTIONS = 3


@dataclass(frozen=True)
class ReceiptEmail:
    """What the templates need, loaded once."""

    receipt: Receipt
    recipient: str
    marketing: bool
    suggestions: list[Product]
    points_balance: int | None


def receipt_email_enqueue(*, receipt_id: int) -> None:
    """Send the receipt by email once the current transaction commits."""

    def enqueue() -> None:
        receipt_email_send_task.delay(receipt_id)

    # robust: a broker outage after the sale committed must not turn the clerk's
    # page into an error; the receipt stays "pending" and can be resent. (A named
    # function, not a partial: Django logs a robust callback's __qualname__.)
    transaction.on_commit(enqueue, robust=True)


@transaction.atomic
def receipt_email_request(*, receipt: Receipt) -> Receipt:
    """Ask for the receipt to be (re)sent to the customer's current address."""
    if receipt.status != Receipt.Status.COMPLETED:
        raise ValidationError(
            {
                "receipt": ValidationError(
                    _("Receipt %(number)s is voided; it cannot be emailed."),
                    code="voided",
                    params={"number": receipt.number},
                )
            }
        )
    if receipt.customer is None or not receipt.customer.email:
        raise ValidationError(
            {
                "receipt": ValidationError(
                    _("There is no email address to send receipt %(number)s to."),
                    code="no_email",
                    params={"number": receipt.number},
                )
            }
        )
    Receipt.objects.filter(pk=receipt.pk).update(
        email_status=Receipt.EmailStatus.PENDING
    )
    receipt.email_status = Receipt.EmailStatus.PENDING
    receipt_email_enqueue(receipt_id=receipt.pk)
    return receipt


def _suggestions(receipt: Receipt) -> list[Product]:
    """Other products from the categories just bought: the marketing block."""
    lines = list(receipt.lines.all())
    return list(
        Product.objects.active()
        .filter(category_id__in={line.product.category_id for line in lines})
        .exclude(pk__in={line.product_id for line in lines})
        .order_by("-id")[:SUGGESTIONS]
    )


def receipt_email_context(*, receipt: Receipt) -> ReceiptEmail:
    """Load what the receipt email shows; marketing only with email consent."""
    customer = receipt.customer
    marketing = bool(
        customer is not None
        and Customer.objects.consented(Channel.EMAIL).filter(pk=customer.pk).exists()
    )
    return ReceiptEmail(
        receipt=receipt,
        recipient=customer.email if customer is not None else "",
        marketing=marketing,
        suggestions=_suggestions(receipt) if marketing else [],
        points_balance=(
            receipt.loyalty_card.points if receipt.loyalty_card_id is not None else None
        ),
    )


def receipt_email_build(*, receipt: Receipt) -> EmailMultiAlternatives:
    """The receipt as an email with a plain-text and an HTML part."""
    email = receipt_email_context(receipt=receipt)
    store = receipt.store
    context = {
        "email": email,
        "receipt": receipt,
        "store": store,
        "lines": list(receipt.lines.all()),
        "purchased_at": receipt.purchased_at,
    }
    # The site's language (not the clerk's browser's, when the task runs in the
    # web process) and the store's clock.
    with (
        translation.override(settings.LANGUAGE_CODE),
        timezone.override(store.zone),
    ):
        subject = render_to_string("email/receipt_subject.txt", context)
        text = render_to_string("email/receipt.txt", context)
        html = render_to_string("email/receipt.html", context)
    message = EmailMultiAlternatives(
        subject=" ".join(subject.split()),
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.recipient],
        reply_to=[store.email] if store.email else None,
        headers={"X-Loyalist-Receipt": receipt.number},
    )
    message.attach_alternative(html, "text/html")
    return message


def _receipt_load(receipt_id: int) -> Receipt | None:
    return (
        Receipt.objects.select_related("store", "customer", "loyalty_card")
        .prefetch_related("lines__product")
        .filter(pk=receipt_id)
        .first()
    )


def receipt_email_send(*, receipt_id: int) -> str:
    """Send a pending receipt email and mark it sent; returns what happened.

    Sending twice is harmless: only a receipt whose email is pending is sent, so a
    redelivered task finds it already sent and stops.
    """
    receipt = _receipt_load(receipt_id)
    if receipt is None or receipt.email_status != Receipt.EmailStatus.PENDING:
        return "skipped"
    if (
        receipt.status != Receipt.Status.COMPLETED
        or receipt.customer is None
        or not receipt.customer.email
    ):
        Receipt.objects.filter(pk=receipt.pk).update(
            email_status=Receipt.EmailStatus.NOT_REQUESTED
        )
        return "skipped"
    message = receipt_email_build(receipt=receipt)
    timeout = getattr(settings, "EMAIL_TIMEOUT", None) or DEFAULT_EMAIL_TIMEOUT
    with get_connection(timeout=timeout) as connection:
        connection.send_messages([message])
    Receipt.objects.filter(pk=receipt.pk).update(
        email_status=Receipt.EmailStatus.SENT, emailed_at=timezone.now()
    )
    logger.info(
        "receipt email sent: receipt_id=%s number=%s", receipt.pk, receipt.number
    )
    return "sent"


def receipt_email_fail(*, receipt_id: int) -> None:
    """Show the receipt's email as failed, so the desk offers to resend it."""
    Receipt.objects.filter(
        pk=receipt_id, email_status=Receipt.EmailStatus.PENDING
    ).update(email_status=Receipt.EmailStatus.FAILED)
