"""What SMS and push backends share: one message at a time to a provider.

A provider answers per message, so a batch's outcomes are collected one by one:
a rejection of one message (`GatewayError`) fails that message only, and the rest
of the batch still goes. A refused connection also fails only its message, not
permanently, so the engine's bounded retries apply. Any other exception (a
timeout, a connection reset, a provider's surprise) may have come after the
provider took the message: that message is `unknown`, never retried by itself.
Both are logged with the delivery id.
"""

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from . import Outcome

logger = logging.getLogger(__name__)

T = TypeVar("T")


class GatewayError(Exception):
    """A provider refused a message; `permanent` when retrying cannot help (an
    invalid number, a dead device token)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


ERROR_CHARS = 300  # Delivery.error's length


def outcomes_each(
    items: Sequence[T],
    send_one: Callable[[T], str],
    *,
    delivery_id: Callable[[T], int],
    on_error: Callable[[T, GatewayError], None] | None = None,
) -> list[Outcome]:
    """Call `send_one` (which returns the provider's message id) for each item
    and turn its result or error into an Outcome, in order."""
    outcomes = []
    for item in items:
        try:
            provider_id = send_one(item)
        except GatewayError as exc:
            if on_error is not None:
                on_error(item, exc)
            outcomes.append(
                Outcome(
                    sent=False, error=str(exc)[:ERROR_CHARS], permanent=exc.permanent
                )
            )
        except ConnectionRefusedError as exc:
            logger.warning(
                "Channel provider unreachable for delivery %s", delivery_id(item)
            )
            outcomes.append(
                Outcome(sent=False, error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS])
            )
        except Exception as exc:
            logger.warning(
                "Channel provider failed for delivery %s; outcome unknown",
                delivery_id(item),
                exc_info=True,
            )
            outcomes.append(
                Outcome(
                    sent=False,
                    error=f"{type(exc).__name__}: {exc}"[:ERROR_CHARS],
                    unknown=True,
                )
            )
        else:
            outcomes.append(Outcome(sent=True, provider_message_id=provider_id))
    return outcomes
