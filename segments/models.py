"""Segments: rule-defined groups of customers, kept current by the segment engine."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .db import SegmentIdsField


class Segment(models.Model):
    class Kind(models.TextChoices):
        DEMOGRAPHIC = "demographic", _("Demographic")
        GEOGRAPHIC = "geographic", _("Geographic")
        BEHAVIOURAL = "behavioural", _("Behavioural")
        VALUE = "value", _("Value / RFM")
        JOURNEY = "journey", _("Journey stage")
        OTHER = "other", _("Other")

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=64, unique=True)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind, default=Kind.OTHER)
    rules = models.JSONField(_("rules"), default=dict)
    is_active = models.BooleanField(_("active"), default=True)
    channel_preference = models.JSONField(
        _("channel preference"),
        default=list,
        blank=True,
        help_text=_(
            "Channels to reach this segment's members on, in order (campaigns use "
            "the first that reaches a customer)."
        ),
    )
    size = models.PositiveIntegerField(_("members"), default=0, editable=False)
    last_computed_at = models.DateTimeField(
        _("last computed"), null=True, blank=True, editable=False
    )
    built_at = models.DateTimeField(
        _("built"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "When a whole-base pass first computed the members. Members found by that "
            "pass entered at this moment and have no history row of their own; every "
            "later entry and exit has one."
        ),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name

    @property
    def query(self) -> str:
        from .query import format_rule

        return format_rule(self.rules)


class SegmentEvent(models.Model):
    """History: every entry into and exit from a segment."""

    class Kind(models.TextChoices):
        ENTERED = "entered", _("Entered")
        EXITED = "exited", _("Exited")

    class Cause(models.TextChoices):
        CONTACT = "contact", _("Contact")
        TIME = "time", _("Time passed")
        RECOMPUTE = "recompute", _("Recompute")

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="events"
    )
    customer = models.ForeignKey(
        "crm.Customer", on_delete=models.CASCADE, related_name="segment_events"
    )
    kind = models.CharField(_("kind"), max_length=8, choices=Kind)
    cause = models.CharField(_("cause"), max_length=16, choices=Cause)
    occurred_at = models.DateTimeField(_("at"))
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("segment event")
        verbose_name_plural = _("segment events")
        indexes = [
            models.Index(fields=["segment", "-occurred_at"]),
            models.Index(fields=["customer", "-occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.kind} {self.segment_id}"


class CustomerSegmentState(models.Model):
    """What the engine last computed for a customer, including its memberships.

    `segment_ids` is the customer's current segments: members of a segment are the
    states whose array includes its id (`segment_ids__includes=pk`, GIN-indexed).

    `rules_version` fingerprints the segment rules, persona rules and RFM thresholds
    the row was computed with, and `persona_id` is the persona the persona rules
    chose (the personas app keeps the assignment and its history; this is the
    engine's result, so no foreign key points up to that app). A whole-base pass
    finds the customers to rewrite by comparing these three columns with a fresh
    evaluation (`segments.db.results_differ_sql`). `next_check_at` is the earliest
    moment a time-based condition can flip for this customer; the time path
    re-evaluates customers once it has passed. `evaluated_at` is when an evaluation
    last changed any of them.
    """

    customer = models.OneToOneField(
        "crm.Customer",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="segment_state",
    )
    rules_version = models.CharField(max_length=8, default="")
    segment_ids = SegmentIdsField(
        help_text=_("The active segments the customer is in now, sorted.")
    )
    persona_id = models.BigIntegerField(null=True)
    next_check_at = models.DateTimeField(null=True, db_index=True)
    evaluated_at = models.DateTimeField(null=True)

    class Meta:
        verbose_name = _("customer segment state")
        verbose_name_plural = _("customer segment states")

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.segment_ids}"


class DirtyCustomer(models.Model):
    """A customer whose memberships must be re-evaluated.

    Written in the same transaction as the contact, so a contact recorded while
    the broker is down is still picked up by the next drain.
    """

    customer = models.OneToOneField(
        "crm.Customer", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    contact = models.ForeignKey(
        "crm.Contact", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    marked_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("customer to re-evaluate")
        verbose_name_plural = _("customers to re-evaluate")

    def __str__(self) -> str:
        return str(self.customer_id)


class EvaluationRow(models.Model):
    """Scratch rows of a whole-base pass: the fresh results of customers whose
    results changed (read by later apps through `segments.selectors.run_results`)."""

    run = models.CharField(max_length=32)
    customer_id = models.BigIntegerField()
    segment_ids = SegmentIdsField()
    persona_id = models.BigIntegerField(null=True)
    next_check_at = models.DateTimeField(null=True)

    class Meta:
        indexes = [models.Index(fields=["run", "customer_id"])]

    def __str__(self) -> str:
        return f"{self.run}/{self.customer_id}"


class RfmThresholds(models.Model):
    """Quintile thresholds t1..t4 of recency (days), frequency and monetary value."""

    recency = models.JSONField(default=list)
    frequency = models.JSONField(default=list)
    monetary = models.JSONField(default=list)
    computed_at = models.DateTimeField(default=timezone.now)
    customers = models.PositiveIntegerField(default=0)

    class Meta:
        get_latest_by = "computed_at"
        verbose_name = _("RFM thresholds")
        verbose_name_plural = _("RFM thresholds")

    def __str__(self) -> str:
        return f"RFM thresholds of {self.computed_at:%Y-%m-%d %H:%M}"


class SegmentSizeSnapshot(models.Model):
    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="size_snapshots"
    )
    date = models.DateField()
    size = models.PositiveIntegerField()

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "date"], name="segmentsizesnapshot_unique"
            ),
            models.CheckConstraint(
                condition=Q(size__gte=0), name="snapshot_size_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id} {self.date}: {self.size}"
