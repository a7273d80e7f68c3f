"""Email: rendered and tracked per delivery, sent through Django's email framework.

`email_outgoing` turns one delivery into an `Outgoing` (personalised subject,
text and HTML, the open pixel, click redirects and the RFC 8058 unsubscribe
headers); `EmailBackend` sends a batch of them over one connection of
`settings.EMAIL_BACKEND` (SMTP, or an email service provider through
django-anymail).

Django's `send_messages` (with `fail_silently=False`) raises on the first message
that fails, so the batch is handed over one message at a time on the same
connection, and each exception is sorted by what it proves:
- the server replied (a 4xx/5xx to MAIL, RCPT or DATA, a refused recipient), or
  the connection never opened or went before the message's content was sent:
  the message surely was not accepted, so it is retried or failed;
- the connection went (disconnect, socket timeout) once the content was on its
  way, while the final reply was awaited, or something unexpected was raised:
  the server may have accepted it, so it is `unknown`, never retried by itself.
Only SMTP can tell the two disconnects apart: `SmtpEmailBackend` (used in place
of Django's own SMTP backend) keeps a connection that knows whether the message
in flight had its content sent.
"""

import contextlib
import hashlib
import html
import logging
import smtplib
from email.utils import make_msgid, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends import smtp
from django.utils.translation import gettext as _

from campaigns.models import Delivery, Message
from campaigns.personalisation import html_links_rewrite, message_render
from campaigns.tracking import tracking_links
from crm.models import Channel

from . import ChannelBackend, Outcome, Outgoing

logger = logging.getLogger(__name__)


def email_domain() -> str:
    """The domain of settings.DEFAULT_FROM_EMAIL, for Message-IDs."""
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or "localhost"


def email_message_id(*, delivery: Delivery) -> str:
    """The delivery's Message-ID: unique per delivery and the same on every
    attempt (retries and deliberate resends move planned_at, so it is not part
    of it), so a message handed over twice is recognisable as one (by the
    receiving server, and by counting Message-IDs)."""
    # A keyed hash keeps ids apart between installations and databases whose
    # delivery ids overlap.
    digest = hashlib.blake2b(
        f"{delivery.pk}:{delivery.run_id}".encode(),
        key=settings.SECRET_KEY.encode()[:64],
        digest_size=8,
    ).hexdigest()
    return f"<loyalist.{delivery.pk}.{digest}@{email_domain()}>"


def _html_footer(body_html: str, footer: str) -> str:
    """Put `footer` before </body>, or at the end of a fragment."""
    position = body_html.lower().rfind("</body>")
    if position == -1:
        return body_html + footer
    return body_html[:position] + footer + body_html[position:]


def email_outgoing(
    *,
    delivery: Delivery,
    message: Message,
    customer_context: dict[str, Any],
    address: str,
) -> Outgoing:
    """One delivery's email, ready for EmailBackend.send.

    `customer_context` is the customer's entry of
    personalisation.customer_contexts; `address` their email address. Links in
    the HTML become click redirects, an open pixel is added, and an unsubscribe
    link is added to each part whose template did not place `{{ unsubscribe_url
    }}` itself.
    """
    links = tracking_links(delivery_id=delivery.pk)
    rendered = message_render(
        message=message,
        context={**customer_context, "unsubscribe_url": links.unsubscribe_url},
    )
    text = rendered.text
    if links.unsubscribe_url not in text:
        text = (
            f"{text.rstrip()}\n\n--\n"
            + _("Unsubscribe from these emails: %(url)s")
            % {"url": links.unsubscribe_url}
            + "\n"
        )
    body_html = rendered.html
    if body_html:
        body_html = html_links_rewrite(
            body_html,
            lambda url: url if url == links.unsubscribe_url else links.click_url(url),
        )
        footer = ""
        if html.escape(links.unsubscribe_url) not in body_html:
            footer += (
                '<p style="font-size:12px;color:#666666">'
                f'<a href="{html.escape(links.unsubscribe_url)}">'
                f"{html.escape(_('Unsubscribe from these emails'))}</a></p>"
            )
        footer += (
            f'<img src="{html.escape(links.open_pixel_url)}" width="1" height="1" '
            'alt="" style="display:block;border:0;width:1px;height:1px">'
        )
        body_html = _html_footer(body_html, footer)
    return Outgoing(
        delivery_id=delivery.pk,
        customer_id=delivery.customer_id,
        channel=Channel.EMAIL,
        address=address,
        subject=rendered.subject,
        body_text=text,
        body_html=body_html,
        headers={
            "Message-ID": email_message_id(delivery=delivery),
            # RFC 8058: mail programs POST "List-Unsubscribe=One-Click" to the
            # https link to unsubscribe without opening it in a browser.
            "List-Unsubscribe": f"<{links.unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "X-Loyalist-Delivery": str(delivery.pk),
        },
    )


class _ReplyTracking:
    """An SMTP connection that knows whether the server may hold the message in
    flight: from the moment its content (ending in the lone "." line) is sent
    until the server's reply to it is read."""

    awaiting_final_reply = False

    def send(self, s):
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.awaiting_final_reply = True
        super().send(s)

    def getreply(self):
        reply = super().getreply()
        # A reply was read: whatever it says, the outcome is certain.
        self.awaiting_final_reply = False
        return reply


class _SMTP(_ReplyTracking, smtplib.SMTP):
    pass


class _SMTP_SSL(_ReplyTracking, smtplib.SMTP_SSL):
    pass


class SmtpEmailBackend(smtp.EmailBackend):
    """Django's SMTP backend over a connection that tracks the final reply."""

    @property
    def connection_class(self):
        return _SMTP_SSL if self.use_ssl else _SMTP


DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


def _connection():
    """A connection of settings.EMAIL_BACKEND; Django's SMTP backend is swapped
    for SmtpEmailBackend, which sends the same way."""
    if settings.EMAIL_BACKEND == DJANGO_SMTP_BACKEND:
        return get_connection(backend=f"{__name__}.SmtpEmailBackend")
    return get_connection()


def _awaiting_final_reply(connection) -> bool:
    return getattr(
        getattr(connection, "connection", None), "awaiting_final_reply", False
    )


def _temporary(error: Exception | str) -> Outcome:
    return Outcome(sent=False, error=str(error)[:300], permanent=False)


def _permanent(error: Exception | str) -> Outcome:
    return Outcome(sent=False, error=str(error)[:300], permanent=True)


def _unknown(error: Exception | str) -> Outcome:
    return Outcome(sent=False, error=str(error)[:300], unknown=True)


def _text(reply: bytes | str) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else reply


def _refused(exc: smtplib.SMTPRecipientsRefused) -> Outcome:
    codes = [code for code, _reply in exc.recipients.values()]
    # The server's replies without the address: the error is stored on the
    # delivery and must hold nothing personal (the delivery names the customer).
    error = "; ".join(
        f"{code} {_text(reply)}" for code, reply in exc.recipients.values()
    )
    # 5xx: the server will never take this address; 4xx (a full mailbox,
    # greylisting): worth another attempt later.
    if codes and all(code >= 500 for code in codes):
        return _permanent(f"recipient refused: {error}")
    return _temporary(f"recipient deferred: {error}")


class EmailBackend(ChannelBackend):
    """Sends a batch over one connection of settings.EMAIL_BACKEND.

    A recipient the server refuses fails that message only (permanently for a
    5xx). A connection lost before a message's content went fails it and the rest
    of the batch temporarily, so the engine retries them; lost after, the message
    is `unknown` and the rest, never handed over, are retried.
    """

    channel = Channel.EMAIL

    def message_build(self, outgoing: Outgoing, connection) -> EmailMultiAlternatives:
        headers = dict(outgoing.headers)
        # email_outgoing sets a stable one; anything else still gets its own.
        headers.setdefault("Message-ID", make_msgid(domain=email_domain()))
        email = EmailMultiAlternatives(
            subject=outgoing.subject,
            body=outgoing.body_text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[outgoing.address],
            headers=headers,
            connection=connection,
        )
        if outgoing.body_html:
            email.attach_alternative(outgoing.body_html, "text/html")
        return email

    def send(self, messages: list[Outgoing]) -> list[Outcome]:
        if not messages:
            return []
        connection = _connection()
        try:
            connection.open()
        except Exception as exc:  # SMTP, socket, or an email provider's own errors
            # Nothing was handed over on a connection that never opened.
            logger.warning("email connection failed: %s", exc)
            return [_temporary(exc) for _message in messages]
        outcomes: list[Outcome] = []
        try:
            for outgoing in messages:
                outcome, connection_lost = self._send_one(outgoing, connection)
                outcomes.append(outcome)
                if connection_lost:
                    # The rest of the batch never reached the server.
                    rest = _temporary(f"not sent: {outcome.error}")
                    outcomes += [rest] * (len(messages) - len(outcomes))
                    break
        finally:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                connection.close()
        return outcomes

    def _send_one(self, outgoing: Outgoing, connection) -> tuple[Outcome, bool]:
        """The message's outcome, and whether the connection is gone."""
        if not outgoing.address:
            return _permanent("no email address"), False
        try:
            email = self.message_build(outgoing, connection)
            sent = connection.send_messages([email])
        except smtplib.SMTPRecipientsRefused as exc:
            return _refused(exc), False
        except smtplib.SMTPSenderRefused as exc:
            # The sender, not the recipient, is refused: no message of the batch
            # will go; a configuration problem, not this customer's.
            return _temporary(f"sender refused: {exc}"), True
        except smtplib.SMTPDataError as exc:
            if exc.smtp_code >= 500:
                return _permanent(f"message refused: {exc}"), False
            return _temporary(f"message deferred: {exc}"), False
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            if _awaiting_final_reply(connection):
                return _unknown(
                    f"connection lost awaiting the server's reply to the message, "
                    f"which it may have accepted: {exc}"
                ), True
            return _temporary(f"connection lost: {exc}"), True
        except ValueError as exc:
            # An address or header Django cannot encode: sending again won't help.
            return _permanent(exc), False
        except Exception as exc:  # an email provider's errors (django-anymail)
            # Nothing says the provider did not take the message.
            logger.warning(
                "email outcome unknown: delivery_id=%s error=%s",
                outgoing.delivery_id,
                exc,
            )
            return _unknown(f"{type(exc).__name__}: {exc}"), False
        if not sent:
            return _temporary("not sent"), False
        return Outcome(sent=True, provider_message_id=_provider_id(email)), False


def _provider_id(email: EmailMultiAlternatives) -> str:
    """django-anymail's id from the provider when there is one (its webhooks
    report bounces by it), else the Message-ID."""
    status = getattr(email, "anymail_status", None)
    provider_id = getattr(status, "message_id", None)
    if isinstance(provider_id, str) and provider_id:
        return provider_id[:200]
    return email.extra_headers["Message-ID"]
