"""Helpers shared by the desk and receipt email tests: a real SMTP server on
loopback, Celery in eager mode, and the POST data of a desk sale."""

import contextlib
import email
import socket
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from django.contrib.auth.models import Group

from crm.desk.forms import token_new
from crm.roles import CLERKS


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpCatcher:
    """Accepts mail like a real SMTP server and keeps it; can be told to refuse.

    `replies` is a list of SMTP replies to give to DATA, one per attempt (for
    example "451 4.3.0 Try again later"); once it is used up, mail is accepted.
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.replies: list[str] = []
        self.attempts = 0
        self.delivered = threading.Event()
        self.host = "127.0.0.1"
        self.port = free_port()

    async def handle_DATA(self, server, session, envelope) -> str:
        self.attempts += 1
        if self.replies:
            return self.replies.pop(0)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=default_policy)
        )
        self.delivered.set()
        return "250 Message accepted for delivery"

    @classmethod
    @contextlib.contextmanager
    def running(cls) -> Iterator["SmtpCatcher"]:
        catcher = cls()
        controller = Controller(catcher, hostname=catcher.host, port=catcher.port)
        controller.start()
        try:
            yield catcher
        finally:
            controller.stop()


def smtp_settings(settings, server: SmtpCatcher) -> None:
    """Point Django's SMTP backend at `server`."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5


@contextlib.contextmanager
def celery_eager(settings) -> Iterator[None]:
    """Run tasks in-process when enqueued, as the embedded mode does."""
    from config.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager = True
    # As configured: a failing task is logged, never raised into the caller.
    app.conf.task_eager_propagates = False
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.task_eager_propagates = previous


def clerks_group() -> Group:
    # get_or_create: transactional tests flush the group the migration made.
    return Group.objects.get_or_create(name=CLERKS)[0]


def sale_data(
    *,
    lines: list[tuple[str, int] | tuple[str, int, str]] = (),
    identifier: str = "",
    payment_method: str = "card",
    email_receipt: bool = False,
    token: str | None = None,
    action: str = "record",
    **fields: str,
) -> dict[str, str]:
    """The POST data of the desk's sale form, as a browser sends it."""
    data = {
        "action": action,
        "token": token or token_new(),
        "identifier": identifier,
        "payment_method": payment_method,
        "lines-TOTAL_FORMS": str(len(lines) + 1),
        "lines-INITIAL_FORMS": "0",
        "lines-MIN_NUM_FORMS": "0",
        "lines-MAX_NUM_FORMS": "100",
        # The empty line every form ends with.
        f"lines-{len(lines)}-code": "",
        f"lines-{len(lines)}-quantity": "1",
        f"lines-{len(lines)}-discount": "",
    }
    for index, line in enumerate(lines):
        code, quantity, *rest = line
        data[f"lines-{index}-code"] = code
        data[f"lines-{index}-quantity"] = str(quantity)
        data[f"lines-{index}-discount"] = rest[0] if rest else ""
    if email_receipt:
        data["email_receipt"] = "on"
    data.update(fields)
    return data
