"""Push: a provider interface, and a development provider that writes a file.

`Outgoing.address` is the device token. Loyalist sends to the customer's newest
live token (crm.selectors.push_token_newest_live): the device whose app
registered last, not every device. The title is the message's subject, the body
its text.

A provider that says a token is dead (the app was removed: APNs 410, FCM
UNREGISTERED) raises `PushTokenDead`; the backend then revokes the token
(crm.services.push_token_revoke), so no later run plans a push to it, and the
delivery fails permanently.
"""

from dataclasses import dataclass

from crm.services import push_token_revoke

from . import ChannelBackend, Outcome, Outgoing
from .gateway import GatewayError, outcomes_each
from .outbox import outbox_send


class PushTokenDead(GatewayError):
    """The provider no longer knows the device token."""

    def __init__(self, message: str = "Push token no longer valid") -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class Push:
    """One notification as a provider receives it."""

    delivery_id: int
    token: str
    title: str
    body: str


class PushBackend(ChannelBackend):
    """A push provider: subclasses implement `send_push` and return its id."""

    channel = "push"

    def send(self, messages: list[Outgoing]) -> list[Outcome]:
        return outcomes_each(
            [
                Push(
                    delivery_id=message.delivery_id,
                    token=message.address,
                    title=message.subject,
                    body=message.body_text,
                )
                for message in messages
            ],
            self._send_checked,
            delivery_id=lambda push: push.delivery_id,
            on_error=self._token_dead,
        )

    def _send_checked(self, push: Push) -> str:
        if not push.token.strip():
            raise GatewayError("No push token to send to", permanent=True)
        return self.send_push(push)

    @staticmethod
    def _token_dead(push: Push, error: GatewayError) -> None:
        if isinstance(error, PushTokenDead):
            push_token_revoke(token=push.token)

    def send_push(self, push: Push) -> str:
        """Hand one notification to the provider; return its message id, or raise
        PushTokenDead / GatewayError."""
        raise NotImplementedError


class FilePushBackend(PushBackend):
    """Development: each notification is a JSON line in
    CAMPAIGN_OUTBOX_DIR/push.jsonl."""

    def send_push(self, push: Push) -> str:
        return outbox_send("push.jsonl", push, prefix="push")
