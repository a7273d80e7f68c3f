"""Channel backends: how a claimed delivery leaves Loyalist.

Each channel has one backend class, chosen in `settings.CAMPAIGN_CHANNEL_BACKENDS`
(a dotted path per channel). The sending engine (`campaigns.services.sending`)
claims a batch of deliveries of one channel, renders each into an `Outgoing`, and
hands the batch to the channel's backend once; the backend returns one `Outcome`
per message, in the same order. Development backends write files; only what
Loyalist cannot run itself (an SMS gateway, a push provider, an ad platform) is
replaced in tests, behind these classes.
"""

from dataclasses import dataclass, field
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Outgoing:
    """One rendered message for one recipient.

    `address` is what the channel sends to: an email address, an E.164 phone
    number, a push token, the postal address's lines. `headers` are extra email
    headers (List-Unsubscribe, Message-ID).
    """

    delivery_id: int
    customer_id: int
    channel: str
    address: str
    subject: str
    body_text: str
    body_html: str = ""
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What became of one message: sent (with the provider's id), failed, or
    unknown.

    `permanent` failures (an address the provider rejects) are not retried.
    `unknown` means the message may have been accepted (the connection went after
    it was handed over, the provider raised something unexpected): the engine
    records it `unknown` and never retries it by itself, because a duplicate is
    worse than a miss; `error` then says why.
    """

    sent: bool
    provider_message_id: str = ""
    error: str = ""
    permanent: bool = False
    unknown: bool = False


class ChannelBackend:
    """Sends a batch of messages of one channel; subclasses implement `send`."""

    channel: str = ""

    def send(self, messages: list[Outgoing]) -> list[Outcome]:
        raise NotImplementedError

    def run_finished(self, run) -> None:
        """Called by the engine once a run has no delivery of this channel left
        to send (the social audience is announced then); nothing by default."""


@cache
def backend_for(channel: str) -> ChannelBackend:
    """The configured backend instance for `channel`."""
    return import_string(settings.CAMPAIGN_CHANNEL_BACKENDS[channel])()
