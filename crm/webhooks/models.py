"""Webhook subscriptions of integrations and the log of every delivery to them."""

import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Channel


def webhook_secret_generate() -> str:
    return secrets.token_hex(32)


class WebhookEvent(models.TextChoices):
    SEGMENT_ENTERED = "segment.entered", _("A customer entered a segment")
    SEGMENT_EXITED = "segment.exited", _("A customer left a segment")
    RECEIPT_CREATED = "receipt.created", _("A sale was recorded")
    CUSTOMER_CREATED = "customer.created", _("A customer was registered")
    PERSONA_CHANGED = "persona.changed", _("A customer's persona changed")
    CUSTOMER_ERASED = "customer.erased", _("A customer's personal data was erased")
    # Announced by the apps built on crm (a campaign's social audience): the
    # payload names the export and where to download it, never a customer.
    AUDIENCE_READY = "audience.ready", _("An audience export is ready to download")


class WebhookSubscription(models.Model):
    name = models.CharField(_("name"), max_length=120)
    url = models.URLField(_("URL"), max_length=500)
    # A list of WebhookEvent values; a list (not an array column) so the embedded
    # SQLite mode stores it too. There are few subscriptions: filtered in Python.
    events = models.JSONField(_("events"), default=list)
    # Segment events only for these segment slugs; empty means every segment.
    segments = models.JSONField(_("segments"), default=list, blank=True)
    secret = models.CharField(
        _("signing secret"), max_length=128, default=webhook_secret_generate
    )
    consent_channel = models.CharField(
        _("consent channel"),
        max_length=16,
        choices=Channel.choices,
        blank=True,
        help_text=_(
            "The channel the receiver uses the data for, for example social_ads for "
            "an ad platform: events about customers without a current grant on it "
            "are left out of its deliveries. Blank for systems that do not market "
            "to the customers (a data warehouse, say)."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="webhook_subscriptions",
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One signed POST of a batch of events, with every attempt's outcome."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed, gave up")

    subscription = models.ForeignKey(
        WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(_("event"), max_length=32, choices=WebhookEvent)
    # The exact JSON body sent (and signed) on every attempt.
    body = models.TextField(_("body"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status, default=Status.PENDING
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # [{"at": ISO-8601, "status_code": int | null, "error": str, "ms": int}, ...]
    attempt_log = models.JSONField(_("attempts log"), default=list, blank=True)
    last_status_code = models.PositiveSmallIntegerField(
        _("last status code"), null=True, blank=True
    )
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["subscription", "-id"]),
        ]

    def __str__(self) -> str:
        return f"{self.event} #{self.pk}"
