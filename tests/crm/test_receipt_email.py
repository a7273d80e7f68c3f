"""The email receipt, delivered to a real SMTP server on loopback."""

import re
from email.utils import parseaddr

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from crm.models import Channel, Consent, Receipt
from crm.services import LineInput, consent_record, points_earn, receipt_record
from crm.services.receipt_email import receipt_email_send
from crm.tasks import (
    RECEIPT_EMAIL_BACKOFF_MAX,
    RECEIPT_EMAIL_MAX_RETRIES,
    receipt_email_retry_countdown,
    receipt_email_send_task,
)
from tests.crm.desk_support import (
    SmtpCatcher,
    celery_eager,
    clerks_group,
    sale_data,
    smtp_settings,
)
from tests.crm.factories import ProductFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp_server(settings):
    with SmtpCatcher.running() as server, celery_eager(settings):
        smtp_settings(settings, server)
        yield server


@pytest.fixture
def desk(client, clerk):
    clerk.groups.add(clerks_group())
    client.force_login(clerk)
    return client


@pytest.fixture
def sale(store, products, customer, card, django_capture_on_commit_callbacks):
    """Record a two-line sale for the customer's card with an email receipt."""

    def record(**kwargs) -> Receipt:
        with django_capture_on_commit_callbacks(execute=True):
            receipt = receipt_record(
                store=store,
                customer=customer,
                loyalty_card=card,
                payment_method="card",
                lines=[LineInput("SHOE-1", 2, discount="10.00"), LineInput("BAG-1", 1)],
                send_email=True,
                **kwargs,
            )
        receipt.refresh_from_db()
        return receipt

    return record


def parts(message) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


def test_desk_sale_emails_the_receipt_after_commit(
    smtp_server,
    desk,
    store,
    products,
    customer,
    card,
    django_capture_on_commit_callbacks,
):
    points_earn(card=card, points=100)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = desk.post(
            reverse("desk:sale"),
            sale_data(
                identifier=card.number,
                lines=[("SHOE-1", 2, "10.00"), ("BAG-1", 1)],
                payment_method="card",
                email_receipt=True,
            ),
        )

    assert response.status_code == 302
    assert len(callbacks) >= 1
    receipt = Receipt.objects.get()
    assert receipt.email_status == Receipt.EmailStatus.SENT
    assert receipt.emailed_at is not None
    assert len(smtp_server.messages) == 1
    message = smtp_server.messages[0]
    mail_from, recipients = smtp_server.envelopes[0]
    assert mail_from == parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    assert recipients == ["joe@example.com"]
    assert message["To"] == "joe@example.com"
    assert message["Subject"] == (
        f"Your receipt {receipt.number} from Loyalist Amsterdam"
    )
    assert message["X-Loyalist-Receipt"] == receipt.number
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    for part in (text, html):
        assert receipt.number in part
        assert "Loyalist Amsterdam" in part
        assert "Kalverstraat 1" in part
        assert "134.40" in part  # 2 x 59.95 - 10.00 + 24.50
        assert "109.90" in part  # the shoe line
        assert "24.50" in part
        assert "Debit or credit card" in part
        assert "134" in part  # points earned
        assert "234" in part  # new balance: 100 + 134
        assert "You may also like" not in part
    assert "Hello Joe" in text
    assert "<table" in html
    local = timezone.localtime(receipt.purchased_at, store.zone)
    assert local.strftime("%H:%M") in text


def test_confirmation_page_shows_the_email_as_sent(
    smtp_server, desk, products, card, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        desk.post(
            reverse("desk:sale"),
            sale_data(identifier=card.number, lines=[("BAG-1", 1)], email_receipt=True),
        )
    receipt = Receipt.objects.get()

    page = desk.get(reverse("desk:receipt_detail", args=[receipt.pk]))

    assert "Sent to joe@example.com" in page.content.decode()
    assert "Resend receipt" in page.content.decode()


def test_email_waits_for_the_commit(smtp_server, store, products, customer):
    receipt = receipt_record(
        store=store,
        customer=customer,
        payment_method="cash",
        lines=[LineInput("BAG-1", 1)],
        send_email=True,
    )

    # Inside the test's transaction nothing has committed, so nothing is sent.
    assert smtp_server.messages == []
    receipt.refresh_from_db()
    assert receipt.email_status == Receipt.EmailStatus.PENDING


def test_marketing_block_appears_only_with_email_consent(
    smtp_server, sale, customer, shoes, products
):
    ProductFactory(sku="SHOE-3", name="Suede loafer", category=shoes, price="79.00")

    sale()
    consent_record(
        customer=customer,
        channel=Channel.EMAIL,
        granted=True,
        source=Consent.Source.STORE,
        wording="Yes, email me offers.",
    )
    sale()
    consent_record(
        customer=customer,
        channel=Channel.EMAIL,
        granted=False,
        source=Consent.Source.EMAIL_LINK,
        wording="Unsubscribe",
    )
    sale()

    without, with_consent, withdrawn = (parts(m) for m in smtp_server.messages)
    for part in with_consent:
        assert "You may also like" in part
    suggested = re.findall(
        r"^- (.+):", with_consent[0].split("You may also like")[1], re.M
    )
    # Other shoes, as shoes were bought; never what is in the bag already.
    assert suggested == ["Suede loafer", products["SHOE-2"].name]
    for part in (*without, *withdrawn):
        assert "You may also like" not in part
        assert "Suede loafer" not in part


def test_failed_sending_is_retried_then_shown_as_failed_and_the_sale_stands(
    smtp_server, desk, sale
):
    smtp_server.replies = ["451 4.3.0 Mailbox busy, try again later"] * 10

    receipt = sale()

    assert smtp_server.attempts == RECEIPT_EMAIL_MAX_RETRIES + 1
    assert smtp_server.messages == []
    assert receipt.email_status == Receipt.EmailStatus.FAILED
    assert receipt.status == Receipt.Status.COMPLETED
    assert receipt.points_earned == 134
    page = desk.get(reverse("desk:receipt_detail", args=[receipt.pk])).content
    assert b"Sending to joe@example.com failed." in page
    assert b"Try again" in page


def test_a_transient_failure_is_retried_and_then_sent(smtp_server, sale):
    smtp_server.replies = ["451 4.3.0 Try again later"]

    receipt = sale()

    assert smtp_server.attempts == 2
    assert len(smtp_server.messages) == 1
    assert receipt.email_status == Receipt.EmailStatus.SENT


def test_a_permanent_rejection_is_not_retried(smtp_server, sale):
    smtp_server.replies = ["554 5.7.1 Message rejected"]

    receipt = sale()

    assert smtp_server.attempts == 1
    assert receipt.email_status == Receipt.EmailStatus.FAILED


def test_unreachable_mail_server_leaves_the_sale_and_marks_the_email_failed(
    settings, sale
):
    with SmtpCatcher.running() as server:
        port = server.port  # closed again once the block ends
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False

    with celery_eager(settings):
        receipt = sale()

    assert receipt.status == Receipt.Status.COMPLETED
    assert receipt.email_status == Receipt.EmailStatus.FAILED


def test_resend_after_a_failure_delivers_the_receipt(
    smtp_server, desk, sale, django_capture_on_commit_callbacks
):
    smtp_server.replies = ["554 5.0.0 Down for maintenance"]
    receipt = sale()
    assert receipt.email_status == Receipt.EmailStatus.FAILED

    with django_capture_on_commit_callbacks(execute=True):
        response = desk.post(reverse("desk:receipt_email", args=[receipt.pk]))

    assert response.status_code == 302
    receipt.refresh_from_db()
    assert receipt.email_status == Receipt.EmailStatus.SENT
    assert len(smtp_server.messages) == 1


def test_running_the_task_twice_sends_the_receipt_once(smtp_server, sale):
    receipt = sale()

    receipt_email_send_task.apply(args=[receipt.pk])

    assert len(smtp_server.messages) == 1
    assert receipt_email_send(receipt_id=receipt.pk) == "skipped"


def test_no_email_for_an_anonymous_sale_or_a_customer_without_address(
    smtp_server, store, products, customer, django_capture_on_commit_callbacks
):
    customer.email = None
    customer.save()
    with django_capture_on_commit_callbacks(execute=True):
        anonymous = receipt_record(
            store=store,
            payment_method="cash",
            lines=[LineInput("BAG-1", 1)],
            send_email=True,
        )
        no_address = receipt_record(
            store=store,
            customer=customer,
            payment_method="cash",
            lines=[LineInput("BAG-1", 1)],
            send_email=True,
        )

    assert smtp_server.messages == []
    for receipt in (anonymous, no_address):
        receipt.refresh_from_db()
        assert receipt.email_status == Receipt.EmailStatus.NOT_REQUESTED


def test_voided_receipt_cannot_be_resent(smtp_server, desk, sale):
    receipt = sale()
    desk.post(reverse("desk:receipt_void", args=[receipt.pk]), {"reason": "Wrong"})

    response = desk.post(reverse("desk:receipt_email", args=[receipt.pk]), follow=True)

    assert "is voided; it cannot be emailed" in response.content.decode()
    assert len(smtp_server.messages) == 1


def test_retries_back_off_exponentially_up_to_a_cap():
    countdowns = [receipt_email_retry_countdown(n) for n in range(8)]

    assert countdowns[:5] == [30, 60, 120, 240, 480]
    assert countdowns == sorted(countdowns)
    assert max(countdowns) == RECEIPT_EMAIL_BACKOFF_MAX
