"""SMS: segments, the opt-out line, the file gateway and gateways that fail."""

import json
import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.channels import Outcome, Outgoing, backend_for
from campaigns.channels.sms import (
    FileSmsBackend,
    GatewayError,
    Sms,
    SmsBackend,
    sms_segments,
    sms_text,
)
from crm.models import Channel
from tests.crm.factories import CustomerFactory

from .channel_support import campaign_run, delivery, outbox, outgoing

__all__ = ["outbox"]

# GSM 03.38 in code order; index = septet value. 0x1B escapes to the extension.
GSM_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
ESC = 0x1B


def gsm_septets(text: str) -> list[int] | None:
    """The text encoded as GSM-7 septet values, or None if it cannot be."""
    septets = []
    for ch in text:
        if ch in GSM_EXTENSION:
            septets += [ESC, GSM_EXTENSION[ch]]
        elif ch != "\x1b" and ch in GSM_TABLE:
            septets.append(GSM_TABLE.index(ch))
        else:
            return None
    return septets


def parts(units: list, size: int, unsplittable) -> int:
    """Cut encoded units into parts of at most `size`, never ending a part on a
    unit that must stay with the next one."""
    count, start = 0, 0
    while start < len(units):
        end = min(start + size, len(units))
        if end < len(units) and unsplittable(units[end - 1]):
            end -= 1
        count += 1
        start = end
    return count


def oracle_segments(text: str) -> int:
    septets = gsm_septets(text)
    if septets is not None:
        if len(septets) <= 160:
            return 1
        return parts(septets, 153, lambda septet: septet == ESC)
    data = text.encode("utf-16-be")
    units = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if len(units) <= 70:
        return 1
    return parts(units, 67, lambda unit: 0xD800 <= unit <= 0xDBFF)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("a" * 159 + "€", 2),  # 161 septets
        # 306 septets would fill two parts of 153, but the € may not be split
        # across them: 152, then € and 151, then 1.
        ("a" * 152 + "€" + "a" * 152, 3),
        ("ą" * 70, 1),
        ("ą" * 71, 2),
        ("ą" * 134, 2),
        ("ą" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 code units
        ("😀" * 36, 2),
        ("Hello 😀" + "a" * 60, 1),  # 68 code units: one UCS-2 message
        ("Hello 😀" + "a" * 63, 2),
    ],
)
def test_segments_of_known_texts(text, segments):
    assert sms_segments(text) == segments
    assert oracle_segments(text) == segments


ALPHABET = st.sampled_from([*"aZ0 @£€[]^{}|~\\\fèÉß\n", "ą", "ç", "ñ", "—", "😀", "中"])


@given(st.text(alphabet=ALPHABET, max_size=500))
def test_segments_match_the_encoded_bytes_oracle(text):
    assert sms_segments(text) == oracle_segments(text)


@given(st.text(max_size=400))
def test_segments_match_the_oracle_for_any_text(text):
    assert sms_segments(text) == oracle_segments(text)


def test_sms_text_adds_the_opt_out_line_once(settings):
    settings.CAMPAIGN_SMS_OPT_OUT = "STOP? Reply STOP"

    assert sms_text("  Sale today!\n") == "Sale today!\nSTOP? Reply STOP"
    assert sms_text("Sale! stop? reply stop") == "Sale! stop? reply stop"
    assert sms_text("Sale", opt_out="Reply NO to unsubscribe") == (
        "Sale\nReply NO to unsubscribe"
    )
    assert sms_text("Sale", opt_out="") == "Sale"


def test_the_configured_sms_backend_is_the_file_gateway():
    assert type(backend_for(Channel.SMS)) is FileSmsBackend


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_gateway_writes_one_json_line_per_message(db, outbox, settings):
    settings.CAMPAIGN_SMS_OPT_OUT = "Reply STOP to opt out"
    run = campaign_run()
    first = delivery(run, CustomerFactory(phone="+31612345678"), Channel.SMS)
    second = delivery(run, CustomerFactory(phone="+31687654321"), Channel.SMS)

    outcomes = FileSmsBackend().send(
        [
            outgoing(first, "+31612345678", body="Shoes -20% this weekend"),
            outgoing(second, "+31687654321", body="€" * 75),
        ]
    )

    assert [o.sent for o in outcomes] == [True, True]
    written = _lines(outbox / "sms.jsonl")
    assert written == [
        {
            "delivery_id": first.pk,
            "to": "+31612345678",
            "text": "Shoes -20% this weekend\nReply STOP to opt out",
            "segments": 1,
            "provider_message_id": outcomes[0].provider_message_id,
        },
        {
            "delivery_id": second.pk,
            "to": "+31687654321",
            # 150 septets, the newline and 21 more: past 160, two parts.
            "text": "€" * 75 + "\nReply STOP to opt out",
            "segments": 2,
            "provider_message_id": outcomes[1].provider_message_id,
        },
    ]
    assert outcomes[0].provider_message_id != outcomes[1].provider_message_id


def test_a_number_that_is_not_e164_fails_permanently_and_is_not_sent(db, outbox):
    run = campaign_run()
    item = delivery(run, CustomerFactory(), Channel.SMS)

    (outcome,) = FileSmsBackend().send([outgoing(item, "0612345678")])

    assert outcome.sent is False
    assert outcome.permanent is True
    assert "E.164" in outcome.error
    assert not (outbox / "sms.jsonl").exists()


class RecordingGateway(SmsBackend):
    """Stands in for an SMS provider's HTTP API: records what it was handed."""

    def __init__(self):
        self.sent: list[Sms] = []

    def send_sms(self, sms: Sms) -> str:
        self.sent.append(sms)
        return f"gw-{len(self.sent)}"


class FailingGateway(SmsBackend):
    """Rejects one number for good, is unreachable for another, sends the rest."""

    def __init__(self):
        self.sent: list[str] = []

    def send_sms(self, sms: Sms) -> str:
        if sms.to == "+31600000001":
            raise GatewayError("Number not in service", permanent=True)
        if sms.to == "+31600000002":
            raise ConnectionRefusedError("gateway unreachable")
        if sms.to == "+31600000004":
            raise ConnectionResetError("gateway hung up")
        self.sent.append(sms.to)
        return "gw-ok"


def test_a_gateway_gets_the_e164_number_text_with_opt_out_and_segments(settings):
    settings.CAMPAIGN_SMS_OPT_OUT = "STOP? Reply STOP"
    gateway = RecordingGateway()
    outcomes = gateway.send(
        [
            Outgoing(
                delivery_id=7,
                customer_id=3,
                channel="sms",
                address=" +447700900123 ",
                subject="",
                body_text="Hi Joe 😀",
            )
        ]
    )

    assert outcomes == [Outcome(sent=True, provider_message_id="gw-1")]
    assert gateway.sent == [
        Sms(
            delivery_id=7,
            to="+447700900123",
            text="Hi Joe 😀\nSTOP? Reply STOP",
            segments=1,
        )
    ]


def test_a_failing_gateway_fails_only_its_messages_and_keeps_the_order():
    gateway = FailingGateway()
    numbers = [
        "+31600000001",
        "+31600000003",
        "+31600000002",
        "not-a-number",
        "+31600000004",
    ]

    outcomes = gateway.send(
        [
            Outgoing(
                delivery_id=index,
                customer_id=index,
                channel="sms",
                address=number,
                subject="",
                body_text="Sale",
            )
            for index, number in enumerate(numbers)
        ]
    )

    assert [(o.sent, o.permanent, o.unknown) for o in outcomes] == [
        (False, True, False),
        (True, False, False),
        (False, False, False),  # refused: surely not taken, the engine may retry
        (False, True, False),
        (False, False, True),  # reset mid-request: the gateway may have it
    ]
    assert outcomes[0].error == "Number not in service"
    assert "ConnectionRefusedError" in outcomes[2].error
    assert "ConnectionResetError" in outcomes[4].error
    assert gateway.sent == ["+31600000003"]


def test_workers_appending_at_once_never_interleave_lines(outbox):
    # Lines longer than a pipe buffer or Python's own write buffer (8 KiB).
    body = "x" * 20_000

    def worker(number: int) -> None:
        FileSmsBackend().send(
            [
                Outgoing(
                    delivery_id=number * 1000 + index,
                    customer_id=1,
                    channel="sms",
                    address="+31612345678",
                    subject="",
                    body_text=body,
                )
                for index in range(50)
            ]
        )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    written = _lines(outbox / "sms.jsonl")
    assert len(written) == 400
    assert {line["delivery_id"] for line in written} == {
        n * 1000 + i for n in range(8) for i in range(50)
    }
    assert all(line["text"].startswith(body) for line in written)
