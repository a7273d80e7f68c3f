"""Campaign email through a real SMTP server (aiosmtpd on loopback)."""

import re
from urllib.parse import urlsplit

import pytest

from campaigns.channels import Outgoing, backend_for
from campaigns.channels.email import EmailBackend, email_outgoing
from campaigns.personalisation import customer_contexts
from crm.models import Consent, Contact
from crm.services import consent_record
from tests.campaigns.conftest import campaign_make, delivery_make, message_make
from tests.crm.factories import CustomerFactory, LoyaltyCardFactory, StoreFactory

pytestmark = pytest.mark.django_db


def subscriber(email: str, first_name: str, **fields):
    customer = CustomerFactory(email=email, first_name=first_name, **fields)
    consent_record(
        customer=customer,
        channel="email",
        granted=True,
        source="store",
        wording="Send me offers",
    )
    return customer


@pytest.fixture
def message():
    return message_make(
        campaign_make(),
        subject="{{ first_name }}, double points at {{ store }}",
        body_text="Hi {{ first_name }}, you have {{ points }} points.\n"
        "https://shop.example/sale",
        body_html="<html><body><p>Hi {{ first_name }}, {{ points }} points.</p>"
        '<a href="https://shop.example/sale?size=42&amp;colour=red">Sale</a>'
        "</body></html>",
    )


@pytest.fixture
def recipients(message):
    store = StoreFactory(name="Loyalist Utrecht")
    customers = [
        subscriber("sarah@example.com", "Sarah", home_store=store),
        subscriber("joe@example.com", "Joe"),
        subscriber("ann@example.com", ""),
    ]
    LoyaltyCardFactory(customer=customers[0], points=120)
    return [delivery_make(customer, message=message) for customer in customers]


def outgoings(deliveries, message) -> list[Outgoing]:
    contexts = customer_contexts([d.customer_id for d in deliveries])
    return [
        email_outgoing(
            delivery=d,
            message=message,
            customer_context=contexts[d.customer_id],
            address=d.customer.email,
        )
        for d in deliveries
    ]


def parts(received):
    text = received.get_body(("plain",)).get_content()
    html = received.get_body(("html",)).get_content()
    return text, html


def test_batch_goes_over_one_connection_with_both_parts_and_unique_ids(
    smtp_server, message, recipients
):
    outcomes = EmailBackend().send(outgoings(recipients, message))

    assert [o.sent for o in outcomes] == [True, True, True]
    assert smtp_server.connections == 1
    assert [to for _from, to in smtp_server.envelopes] == [
        ["sarah@example.com"],
        ["joe@example.com"],
        ["ann@example.com"],
    ]
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(set(ids)) == 3
    assert [o.provider_message_id for o in outcomes] == ids
    assert all(i.endswith("@shop.example>") for i in ids)
    for received in smtp_server.messages:
        assert received["From"] == "Loyalist <news@shop.example>"
        assert received.get_content_type() == "multipart/alternative"


def test_messages_are_personalised_with_fallbacks(smtp_server, message, recipients):
    EmailBackend().send(outgoings(recipients, message))
    sarah, _joe, ann = smtp_server.messages

    assert sarah["Subject"] == "Sarah, double points at Loyalist Utrecht"
    text, html = parts(sarah)
    assert text.startswith("Hi Sarah, you have 120 points.")
    assert "<p>Hi Sarah, 120 points.</p>" in html

    assert ann["Subject"] == "there, double points at our store"
    assert parts(ann)[0].startswith("Hi there, you have 0 points.")


def test_unsubscribe_headers_follow_rfc_8058_and_the_link_works(
    client, smtp_server, message, recipients
):
    EmailBackend().send(outgoings(recipients, message))
    received = smtp_server.messages[0]

    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = re.fullmatch(
        r"<(https://shop\.example/c/u/[^>]+/)>", received["List-Unsubscribe"].strip()
    )
    assert link is not None
    text, html = parts(received)
    # Templates without {{ unsubscribe_url }} get it in a footer of each part.
    assert link.group(1) in text
    assert link.group(1) in html

    # What a mail program does on "unsubscribe": POST the body of RFC 8058.
    response = client.post(
        urlsplit(link.group(1)).path,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    sarah = recipients[0].customer
    assert (
        Consent.objects.filter(customer=sarah, channel="email").first().status
        == Consent.Status.WITHDRAWN
    )


def test_html_links_become_click_redirects_and_a_pixel_is_added(
    client, smtp_server, message, recipients
):
    EmailBackend().send(outgoings(recipients, message))
    _text, html = parts(smtp_server.messages[1])
    joe = recipients[1].customer

    hrefs = re.findall(r'href="([^"]+)"', html)
    click = next(h for h in hrefs if "/c/l/" in h)
    assert "https://shop.example/sale" not in hrefs
    response = client.get(urlsplit(click.replace("&amp;", "&")).path)
    assert response["Location"] == "https://shop.example/sale?size=42&colour=red"

    pixel = re.search(r'<img src="(https://shop\.example/c/o/[^"]+\.gif)"', html)
    assert pixel is not None
    assert html.index(pixel.group(0)) < html.index("</body>")
    client.get(urlsplit(pixel.group(1)).path)

    kinds = set(Contact.objects.filter(customer=joe).values_list("kind", flat=True))
    assert {"email_click", "email_open"} <= kinds


def test_template_placing_the_unsubscribe_link_gets_no_footer(smtp_server, recipients):
    message = message_make(
        recipients[0].campaign,
        body_text="Bye: {{ unsubscribe_url }}",
        body_html='<a href="{{ unsubscribe_url }}">Bye</a>',
    )
    delivery = recipients[0]
    EmailBackend().send(outgoings([delivery], message))
    text, html = parts(smtp_server.messages[0])

    assert text.count("/c/u/") == 1
    # The unsubscribe link itself is not turned into a click redirect.
    assert html.count("/c/u/") == 1
    assert "/c/l/" not in html


def test_refused_recipient_fails_permanently_and_the_rest_still_go(
    smtp_server, message, recipients
):
    smtp_server.refuse = {"joe@example.com"}

    outcomes = EmailBackend().send(outgoings(recipients, message))

    assert [o.sent for o in outcomes] == [True, False, True]
    assert outcomes[1].permanent
    assert "550" in outcomes[1].error
    assert len(smtp_server.messages) == 2
    assert smtp_server.connections == 1


def test_connection_lost_awaiting_the_reply_is_unknown_and_the_rest_retried(
    smtp_server, message, recipients
):
    # The server receives the second message's content, then hangs up unanswered.
    smtp_server.drop_on = 2

    outcomes = EmailBackend().send(outgoings(recipients, message))

    assert outcomes[0].sent
    assert outcomes[1].unknown
    assert not outcomes[1].sent
    assert "may have accepted" in outcomes[1].error
    # The third was never handed over: surely not accepted, so retried.
    assert (outcomes[2].sent, outcomes[2].permanent, outcomes[2].unknown) == (
        False,
        False,
        False,
    )
    assert len(smtp_server.messages) == 1


def test_data_replies_4xx_and_5xx_are_certain_failures(
    smtp_server, message, recipients
):
    smtp_server.reply_for = {
        recipients[0].customer.email: "451 4.3.0 Try again later",
        recipients[1].customer.email: "550 5.7.1 Message rejected",
    }

    outcomes = EmailBackend().send(outgoings(recipients, message))

    assert [(o.sent, o.permanent, o.unknown) for o in outcomes] == [
        (False, False, False),
        (False, True, False),
        (True, False, False),
    ]
    assert "451" in outcomes[0].error
    assert "550" in outcomes[1].error


def test_no_server_fails_every_message_temporarily(settings, message, recipients):
    from tests.campaigns.conftest import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()

    outcomes = EmailBackend().send(outgoings(recipients, message))

    assert len(outcomes) == 3
    assert not any(o.sent or o.permanent or o.unknown for o in outcomes)


def test_message_id_is_stable_per_delivery(message, recipients):
    first = outgoings(recipients, message)
    again = outgoings(recipients, message)
    assert [o.headers["Message-ID"] for o in first] == [
        o.headers["Message-ID"] for o in again
    ]
    assert len({o.headers["Message-ID"] for o in first}) == 3


def test_backend_is_the_configured_one():
    assert isinstance(backend_for("email"), EmailBackend)
