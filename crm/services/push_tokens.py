"""Push tokens: the device addresses the shop's app registers for a customer."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import field_error
from crm.models import Customer, PushToken

from .customers import _erased_refuse_locked

TOKEN_MAX_LENGTH = PushToken._meta.get_field("token").max_length


@transaction.atomic
def push_token_register(
    *, customer: Customer, token: str, platform: str
) -> tuple[PushToken, bool]:
    """Record that the app on a device reaches `customer`; returns the token and
    whether it was new.

    Idempotent: registering a token again keeps one row, makes it live again if it
    was revoked, and makes it the customer's newest (the app registers on every
    start, so the newest is the device in use). A token another customer held
    moves to this one: one device belongs to one customer at a time.
    """
    # Under the customer's lock: an erasure committing meanwhile deletes the
    # tokens, and must not see one registered after it.
    _erased_refuse_locked(customer)
    token = (token or "").strip()
    if not token or len(token) > TOKEN_MAX_LENGTH:
        raise field_error(
            "token",
            _("A push token is 1 to %(max)s characters."),
            "invalid",
            max=TOKEN_MAX_LENGTH,
        )
    if platform not in PushToken.Platform.values:
        raise field_error(
            "platform",
            _("Platform is one of %(choices)s."),
            "invalid_choice",
            choices=", ".join(PushToken.Platform.values),
        )
    # update_or_create locks an existing row, and retries as an update when a
    # concurrent registration of the same token inserted it first.
    return PushToken.objects.update_or_create(
        token=token,
        defaults={
            "customer": customer,
            "platform": platform,
            "registered_at": timezone.now(),
            "revoked_at": None,
        },
    )


def push_token_revoke(
    *,
    token: str,
    customer: Customer | None = None,
    revoked_at: datetime | None = None,
) -> bool:
    """Stop sending to a token (the provider reports it dead, or the app signed
    out); returns whether a live token was revoked.

    With `customer`, only that customer's token is revoked. One UPDATE: safe to
    call from a sending worker outside any transaction, and harmless twice.
    """
    tokens = PushToken.objects.filter(token=token.strip(), revoked_at__isnull=True)
    if customer is not None:
        tokens = tokens.filter(customer=customer)
    return bool(tokens.update(revoked_at=revoked_at or timezone.now()))
