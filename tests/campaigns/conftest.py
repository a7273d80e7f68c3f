"""Fixtures for the campaign tests: a real SMTP server on loopback and a few
campaign rows built directly (behaviour under test goes through the services).
The API clients per role come from tests/api."""

import email
import socket
import threading
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from campaigns.models import Campaign, CampaignRun, Delivery, Message
from segments.models import SegmentEvent
from tests.api.conftest import (  # noqa: F401 - fixtures, used by name
    _generous_throttle,
    api_admin,
    marketer,
    nobody,
    reader,
    till,
)
from tests.crm.factories import UserFactory


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """Accepts mail like a real SMTP server and keeps what it received.

    `refuse` holds addresses to refuse at RCPT with a 550; `drop_on` the number
    of the DATA command (1-based) at which to close the connection unanswered;
    `drop_for` addresses whose message content is received and then the
    connection closed unanswered; `reply_for` a reply to give to the content of a
    message to an address instead of accepting it ("451 ...", "550 ...").
    """

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.refuse: set[str] = set()
        self.drop_on: int | None = None
        self.drop_for: set[str] = set()
        self.reply_for: dict[str, str] = {}
        self.dropped: list[list[str]] = []
        self.data_commands = 0
        self.connections = 0
        self._lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            self.data_commands += 1
            if self.drop_on is not None and self.data_commands >= self.drop_on:
                server.transport.close()
                return "421 4.3.0 Going away"
            if self.drop_for & set(envelope.rcpt_tos):
                self.dropped.append(list(envelope.rcpt_tos))
                server.transport.close()
                return "421 4.3.0 Going away"
            for address in envelope.rcpt_tos:
                if address in self.reply_for:
                    return self.reply_for[address]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self.messages.append(
                email.message_from_bytes(envelope.content, policy=default_policy)
            )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 that Django's SMTP backend
    sends to."""
    server = SmtpServer()
    controller = Controller(server, hostname=server.host, port=server.port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def no_quiet_hours(request, settings):
    """Messages due now go now, whatever the time of day the suite runs at;
    tests marked `quiet_hours` keep the default 21:00-08:00."""
    if not request.node.get_closest_marker("quiet_hours"):
        settings.CAMPAIGN_QUIET_HOURS = ("00:00", "00:00")


@pytest.fixture(autouse=True)
def public_base_url(settings):
    settings.PUBLIC_BASE_URL = "https://shop.example"
    settings.DEFAULT_FROM_EMAIL = "Loyalist <news@shop.example>"


def campaign_make(**fields) -> Campaign:
    fields.setdefault("name", "Spring sale")
    fields.setdefault("slug", f"spring-{Campaign.objects.count() + 1}")
    return Campaign.objects.create(**fields)


def message_make(campaign: Campaign, **fields) -> Message:
    fields.setdefault("name", f"email-{campaign.messages.count() + 1}")
    fields.setdefault("channel", "email")
    fields.setdefault("subject", "Hello {{ first_name }}")
    fields.setdefault("body_text", "Hi {{ first_name }}, you have {{ points }} points.")
    fields.setdefault(
        "body_html",
        "<html><body><p>Hi {{ first_name }}</p>"
        '<a href="https://shop.example/sale?a=1&amp;b=2">Sale</a></body></html>',
    )
    return Message.objects.create(campaign=campaign, **fields)


def triggered_make(segment, **fields) -> Campaign:
    """A running triggered campaign greeting `segment`'s new members by email,
    with one message."""
    fields.setdefault("slug", f"welcome-{Campaign.objects.count() + 1}")
    fields.setdefault("channels", ["email"])
    fields.setdefault("holdout_percent", 0)
    campaign = campaign_make(
        kind=Campaign.Kind.TRIGGERED,
        status=Campaign.Status.ACTIVE,
        trigger_segment=segment,
        **fields,
    )
    campaign.include_segments.add(segment)
    message_make(campaign)
    return campaign


def entry_make(segment, customer, occurred_at=None, pk=None) -> SegmentEvent:
    """`customer` entered `segment` (at `occurred_at`, with id `pk` if given)."""
    return SegmentEvent.objects.create(
        pk=pk,
        segment=segment,
        customer=customer,
        kind=SegmentEvent.Kind.ENTERED,
        cause=SegmentEvent.Cause.CONTACT,
        occurred_at=occurred_at or timezone.now(),
    )


def delivery_make(customer, *, message: Message, run: CampaignRun | None = None):
    campaign = message.campaign
    if run is None:
        run, _ = CampaignRun.objects.get_or_create(
            campaign=campaign, key="once", defaults={"due_at": timezone.now()}
        )
    return Delivery.objects.create(
        campaign=campaign,
        run=run,
        customer=customer,
        channel=message.channel,
        message=message,
        status=Delivery.Status.SENDING,
        planned_at=run.due_at,
    )


@pytest.fixture
def user(db):
    return UserFactory(username="sam-marketer")
