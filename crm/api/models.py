"""What the API keeps for itself: idempotent responses, and its view of the token."""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework.authtoken.models import Token


class IdempotencyRecord(models.Model):
    """The first successful response to a POST sent with an `Idempotency-Key`.

    A retry with the same key and body gets this response again instead of a
    second receipt; the same key with another body is refused.
    """

    # No index of its own: the unique constraint starts with it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="idempotency_records",
        db_index=False,
    )
    # Keys are the client's: they are unique per user and endpoint, not globally.
    scope = models.CharField(_("endpoint"), max_length=64)
    key = models.CharField(_("idempotency key"), max_length=255)
    request_hash = models.CharField(_("request hash"), max_length=64)
    status_code = models.PositiveSmallIntegerField(_("status code"), default=0)
    response_body = models.JSONField(_("response body"), default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("idempotency record")
        verbose_name_plural = _("idempotency records")
        constraints = [
            # The unique index is what makes two concurrent retries wait for the
            # first one instead of both recording a sale.
            models.UniqueConstraint(
                fields=["user", "scope", "key"], name="idempotencyrecord_unique"
            )
        ]
        indexes = [models.Index(fields=["created_at"])]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}"


class ApiTokenManager(models.Manager):
    def get_queryset(self):
        # What crm.api.permissions reads on every request: the till's store and
        # the user's groups (roles).
        return (
            super()
            .get_queryset()
            .select_related("user__staff_member")
            .prefetch_related("user__groups")
        )


class ApiToken(Token):
    """DRF's token, read with what the API's permissions need (no table)."""

    objects = ApiTokenManager()

    class Meta:
        proxy = True
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
