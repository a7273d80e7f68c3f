"""Campaigns: who gets which message on which channel, and what happened to it.

A campaign's audience is segments and personas (minus excluded segments). Each run
of a campaign (the one-off send, each occurrence of a recurring one, each day of a
triggered one) plans one `Delivery` row per recipient before anything is sent: the
row carries the channel and message chosen for the customer, or why they were held
out, deferred or skipped. Workers send only rows they claimed, so the unique
(campaign, run, customer) key is what makes a second message to the same person in
the same run impossible.
"""

import secrets

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Channel, Customer
from personas.models import Persona
from segments.db import SegmentIdsField
from segments.models import Segment


def campaign_salt() -> str:
    return secrets.token_hex(4)


class Campaign(models.Model):
    class Kind(models.TextChoices):
        ONE_OFF = "one_off", _("One-off")
        RECURRING = "recurring", _("Recurring")
        TRIGGERED = "triggered", _("Triggered by segment entry")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        SENDING = "sending", _("Sending")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        SENT = "sent", _("Sent")
        CANCELLED = "cancelled", _("Cancelled")

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(
        _("kind"), max_length=16, choices=Kind, default=Kind.ONE_OFF
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status, default=Status.DRAFT
    )
    include_segments = models.ManyToManyField(
        Segment,
        blank=True,
        related_name="campaigns_including",
        verbose_name=_("segments to include"),
    )
    include_personas = models.ManyToManyField(
        Persona,
        blank=True,
        related_name="campaigns_including",
        verbose_name=_("personas to include"),
    )
    exclude_segments = models.ManyToManyField(
        Segment,
        blank=True,
        related_name="campaigns_excluding",
        verbose_name=_("segments to exclude"),
    )
    channels = models.JSONField(
        _("default channel order"),
        default=list,
        blank=True,
        help_text=_(
            "Channels to try, in order, for customers whose own preference, persona "
            "and segments name none that reaches them."
        ),
    )
    holdout_percent = models.PositiveSmallIntegerField(
        _("control group (%)"),
        default=10,
        validators=[MaxValueValidator(90)],
        help_text=_(
            "This share of the audience receives nothing and is the yardstick for "
            "what the campaign changed. The same customers stay in it on every run."
        ),
    )
    priority = models.IntegerField(
        _("priority"),
        default=0,
        help_text=_(
            "When the frequency cap allows only some messages, campaigns with a "
            "higher priority go first."
        ),
    )
    frequency_cap = models.PositiveSmallIntegerField(
        _("frequency cap"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Marketing messages per customer in the window; empty: the default."
        ),
    )
    frequency_window_days = models.PositiveSmallIntegerField(
        _("frequency window (days)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
    )
    send_at = models.DateTimeField(_("send at"), null=True, blank=True)
    recurrence = models.TextField(
        _("recurrence"),
        blank=True,
        help_text=_(
            "An RFC 5545 rule in the shop's time zone, for example "
            '"DTSTART:20270104T090000\\nRRULE:FREQ=WEEKLY;BYDAY=MO".'
        ),
    )
    trigger_segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns_triggered",
        verbose_name=_("trigger: entering segment"),
    )
    trigger_delay_minutes = models.PositiveIntegerField(
        _("trigger delay (minutes)"), default=0
    )
    trigger_reentry_days = models.PositiveSmallIntegerField(
        _("not again within (days)"),
        default=30,
        validators=[MinValueValidator(1)],
    )
    costs = models.JSONField(
        _("cost per message"),
        default=dict,
        blank=True,
        help_text=_('Per channel, in the shop\'s currency: {"sms": "0.07"}.'),
    )
    attribution_days = models.PositiveSmallIntegerField(
        _("attribution window (days)"), default=7, validators=[MinValueValidator(1)]
    )
    # Salts the stable hashes that pick the control group and the message variant,
    # so two campaigns do not hold back the same customers.
    salt = models.CharField(max_length=8, default=campaign_salt, editable=False)
    # A triggered campaign reads the segment entries that occurred from this moment
    # on; each consume moves it to CAMPAIGN_TRIGGER_OVERLAP before its own time,
    # so late-committed entries are still read (services.runs.trigger_consume).
    trigger_read_from = models.DateTimeField(null=True, blank=True, editable=False)
    # The next moment beat should plan a run (one-off send, next recurrence).
    next_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns_created",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        constraints = [
            models.CheckConstraint(
                condition=Q(holdout_percent__lte=90),
                name="campaign_holdout_lte_90",
            ),
        ]
        indexes = [models.Index(fields=["status", "next_run_at"])]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("admin:campaigns_campaign_change", args=[self.pk])

    @property
    def salt_number(self) -> int:
        return int(self.salt, 16)


class Message(models.Model):
    """One variant of a campaign's message, for one channel and optionally one
    segment or persona."""

    # What a marketer writes for a message (the services, the API and the admin).
    EDITABLE_FIELDS = (
        "name",
        "channel",
        "subject",
        "body_text",
        "body_html",
        "segment",
        "persona",
        "weight",
    )

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="messages"
    )
    name = models.CharField(_("name"), max_length=80)
    channel = models.CharField(_("channel"), max_length=16, choices=Channel)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body_text = models.TextField(_("text"), blank=True)
    body_html = models.TextField(_("HTML"), blank=True)
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaign_messages",
        verbose_name=_("only for segment"),
    )
    persona = models.ForeignKey(
        Persona,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaign_messages",
        verbose_name=_("only for persona"),
    )
    weight = models.PositiveSmallIntegerField(
        _("weight"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Among several messages for the same customers, the share each gets."
        ),
    )

    class Meta:
        ordering = ["campaign", "id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "name"], name="message_name_unique_per_campaign"
            ),
            # A variant is for a segment or a persona (or everyone), not both.
            models.CheckConstraint(
                condition=Q(segment__isnull=True) | Q(persona__isnull=True),
                name="message_one_target",
            ),
            models.CheckConstraint(
                condition=Q(weight__gte=1), name="message_weight_gte_1"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_channel_display()})"


class CampaignRun(models.Model):
    """One planning of a campaign: its audience at `due_at`, one delivery each."""

    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        SENDING = "sending", _("Sending")
        FINISHED = "finished", _("Finished")
        CANCELLED = "cancelled", _("Cancelled")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="runs"
    )
    # For a triggered campaign, the day of the entries it collects (shop's time).
    key = models.CharField(_("run"), max_length=32)
    due_at = models.DateTimeField(_("due at"))
    planned_at = models.DateTimeField(_("planned at"), default=timezone.now)
    status = models.CharField(
        _("status"), max_length=16, choices=Status, default=Status.PLANNED
    )
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-due_at", "-id"]
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        constraints = [
            # Beat may fire twice for one occurrence; the second planning is a no-op.
            models.UniqueConstraint(fields=["campaign", "key"], name="run_key_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} {self.key}"


class Delivery(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        HELD_OUT = "held_out", _("Held out (control group)")
        DEFERRED = "deferred", _("Deferred (quiet hours)")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped")
        UNKNOWN = "unknown", _("Unknown (worker lost mid-send)")

    # No index of their own on campaign, run and customer: the unique key and
    # the indexes below lead with them, and planning writes every index per row.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    run = models.ForeignKey(
        CampaignRun, on_delete=models.CASCADE, related_name="deliveries", db_index=False
    )
    # PROTECT: a customer with deliveries is erased (personal data gone), not
    # deleted, so the campaign's figures keep every recipient.
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="deliveries", db_index=False
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel, blank=True)
    message = models.ForeignKey(
        Message,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deliveries",
    )
    status = models.CharField(_("status"), max_length=16, choices=Status)
    reason = models.CharField(_("reason"), max_length=300, blank=True)
    # When it goes (or, for the control group, would have gone): the run's due time,
    # or the end of the customer's quiet hours.
    planned_at = models.DateTimeField(_("planned for"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # A claimed delivery belongs to its worker until then; past it, the outcome is
    # unknown and it is never resent without a person deciding to.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    provider_message_id = models.CharField(
        _("provider message id"), max_length=200, blank=True
    )
    error = models.CharField(_("error"), max_length=300, blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            # Written before anything is sent: a second message to the same person
            # in the same run cannot exist.
            models.UniqueConstraint(
                fields=["campaign", "run", "customer"],
                name="delivery_one_per_customer_per_run",
            ),
        ]
        indexes = [
            # Workers claim due rows of a status in planned order.
            models.Index(fields=["status", "planned_at"], name="delivery_due_idx"),
            # The frequency cap counts a customer's recent deliveries.
            models.Index(
                fields=["customer", "planned_at"], name="delivery_customer_idx"
            ),
            models.Index(fields=["run", "status"], name="delivery_run_status_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.run_id}: {self.customer_id} {self.status}"


class CampaignChange(models.Model):
    """Who changed what on a campaign once it was scheduled (and every schedule,
    pause, resume and cancel)."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="changes"
    )
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        related_name="campaign_changes",
        verbose_name=_("changed by"),
    )
    changed_at = models.DateTimeField(_("changed at"), default=timezone.now)
    action = models.CharField(_("action"), max_length=32)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("campaign change")
        verbose_name_plural = _("campaign changes")

    def __str__(self) -> str:
        return (
            f"{self.action} by {self.changed_by_id} at {self.changed_at:%Y-%m-%d %H:%M}"
        )


class PlanColumns(models.Model):
    """What planning knows of each recipient of a run, column by column.

    `PlanFact` and `PlanChoice` are not tables: they name the two common table
    expressions of the planning statement (campaigns.services.planning), so that
    each step of the decision is an ORM query over the columns of the step before
    it. A customer's consents, addresses and recent messages are looked up once in
    the first step; the choices that follow read them as plain columns.
    """

    customer_id = models.BigIntegerField(primary_key=True)
    persona_id = models.BigIntegerField(null=True)
    segment_ids = SegmentIdsField(null=True)
    # A stable draw in [0, 100) of (campaign, customer): the control group.
    holdout_draw = models.IntegerField()
    # Marketing messages the customer has in the frequency cap's window.
    recent = models.IntegerField()
    # When the message goes: the run's due time or the end of the quiet hours.
    wake = models.DateTimeField()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"plan of customer {self.customer_id}"


class PlanFact(PlanColumns):
    """Step one: the customer's facts. `<channel>_reach` is REACH_NO_CONSENT,
    REACH_NO_ADDRESS or REACH_OK for the channels the campaign has messages on."""

    preference = models.CharField(max_length=16)
    email_reach = models.SmallIntegerField(null=True)
    sms_reach = models.SmallIntegerField(null=True)
    push_reach = models.SmallIntegerField(null=True)
    social_ads_reach = models.SmallIntegerField(null=True)
    post_reach = models.SmallIntegerField(null=True)

    class Meta:
        managed = False
        db_table = "campaigns_plan_fact"


class PlanChoice(PlanColumns):
    """Step two: the channel chosen for the customer ("" for none) and why."""

    chosen = models.CharField(max_length=16)
    why = models.TextField()

    class Meta:
        managed = False
        db_table = "campaigns_plan_choice"
