"""SMS: a gateway interface, and a development gateway that writes a file.

`SmsBackend` does what every gateway needs: it checks the number is E.164, adds
the opt-out line (`sms_text`) and counts the segments the text costs
(`sms_segments`); a subclass for a real gateway implements `send_sms` for one
message and raises `GatewayError(..., permanent=True)` for a number the gateway
rejects. `FileSmsBackend` (the default, for development) appends each message as
one JSON line to CAMPAIGN_OUTBOX_DIR/sms.jsonl.
"""

import re
from dataclasses import dataclass

from django.conf import settings

from . import ChannelBackend, Outcome, Outgoing
from .gateway import GatewayError, outcomes_each
from .outbox import outbox_send

# GSM 03.38's default alphabet, in code order (0x1B, the escape to the extension
# table, is not a character of its own), and the extension table's characters,
# which take two septets (the escape and their code).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
) - {"\x1b"}
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# Septets (GSM-7) or UTF-16 code units (UCS-2) of one message, and of each part of
# a longer one (the rest of a part is the header that joins the parts up again).
GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def _widths(text: str) -> tuple[list[int], int, int]:
    """Each character's size in its encoding, and that encoding's limits."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text], GSM7_SINGLE, GSM7_PART
    # Outside the GSM alphabet the whole message is UCS-2 (UTF-16 on every phone
    # in use): a character beyond the BMP (an emoji) is two code units.
    return [1 if ord(ch) < 0x10000 else 2 for ch in text], UCS2_SINGLE, UCS2_PART


def sms_segments(text: str) -> int:
    """How many SMS segments `text` is sent as (an empty text still costs one).

    GSM-7 when every character is in the GSM alphabet (extension characters such
    as € and [ count twice): 160 septets in one message, else parts of 153.
    Otherwise UCS-2: 70 code units, else parts of 67. Phones never split an
    escape sequence or a surrogate pair across parts, so neither does this.
    """
    widths, single, part = _widths(text)
    if sum(widths) <= single:
        return 1
    segments, used = 1, 0
    for width in widths:
        if used + width > part:
            segments += 1
            used = 0
        used += width
    return segments


def sms_text(body: str, opt_out: str | None = None) -> str:
    """The text sent: the message, then the opt-out line on a line of its own.

    `opt_out` defaults to settings.CAMPAIGN_SMS_OPT_OUT; a body that already says
    it (whatever the capitals) does not get it twice, and an empty one adds none.
    """
    line = (settings.CAMPAIGN_SMS_OPT_OUT if opt_out is None else opt_out).strip()
    body = body.strip()
    if not line or line.casefold() in body.casefold():
        return body
    return f"{body}\n{line}" if body else line


@dataclass(frozen=True)
class Sms:
    """One text message as a gateway receives it."""

    delivery_id: int
    to: str  # E.164
    text: str
    segments: int


class SmsBackend(ChannelBackend):
    """A gateway: subclasses implement `send_sms` and return the gateway's id."""

    channel = "sms"

    def send(self, messages: list[Outgoing]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(messages)
        ready: list[tuple[int, Sms]] = []
        for index, message in enumerate(messages):
            to = message.address.strip()
            if not E164.fullmatch(to):
                outcomes[index] = Outcome(
                    sent=False,
                    error=f"Not an E.164 phone number: {to!r}",
                    permanent=True,
                )
                continue
            text = sms_text(message.body_text)
            ready.append(
                (
                    index,
                    Sms(
                        delivery_id=message.delivery_id,
                        to=to,
                        text=text,
                        segments=sms_segments(text),
                    ),
                )
            )
        sent = outcomes_each(
            [sms for _index, sms in ready],
            self.send_sms,
            delivery_id=lambda sms: sms.delivery_id,
        )
        for (index, _sms), outcome in zip(ready, sent, strict=True):
            outcomes[index] = outcome
        return outcomes  # type: ignore[return-value]

    def send_sms(self, sms: Sms) -> str:
        """Hand one message to the gateway; return its message id or raise
        GatewayError."""
        raise NotImplementedError


class FileSmsBackend(SmsBackend):
    """Development: each message is a JSON line in CAMPAIGN_OUTBOX_DIR/sms.jsonl."""

    def send_sms(self, sms: Sms) -> str:
        return outbox_send("sms.jsonl", sms, prefix="sms")


__all__ = [
    "FileSmsBackend",
    "GatewayError",
    "Sms",
    "SmsBackend",
    "sms_segments",
    "sms_text",
]
