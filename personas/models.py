"""Buyer personas: one imagined customer each, tied to the real customers who match.

A persona's `rules` are a segment rule; every customer is assigned to at most one
active persona (the matching one with the largest `priority`, ties to the lower id).
The segment engine keeps `PersonaAssignment` current on every path (contact, time,
whole base) and records each change as a `PersonaChange`.
"""

from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Customer


class Persona(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft (not matched)")
        ACTIVE = "active", _("Active")
        RETIRED = "retired", _("Retired")

    class Level(models.TextChoices):
        LOW = "low", _("Low")
        MEDIUM = "medium", _("Medium")
        HIGH = "high", _("High")

    class BuyingRole(models.TextChoices):
        DECIDES = "decides", _("Decides")
        INFLUENCES = "influences", _("Influences")
        PAYS = "pays", _("Pays")
        DECIDES_AND_PAYS = "decides_pays", _("Decides and pays")

    class Source(models.TextChoices):
        SALES_TEAM = "sales_team", _("Sales team")
        SURVEYS = "surveys", _("Surveys")
        ANALYTICS = "analytics", _("Analytics")
        INTERVIEWS = "interviews", _("Interviews")
        CLUSTERING = "clustering", _("Clustering of customer data")

    name = models.CharField(_("name"), max_length=60, help_text=_('For example "Joe".'))
    slug = models.SlugField(
        _("slug"),
        max_length=64,
        unique=True,
        help_text=_('How rules refer to the persona: persona = "joe".'),
    )
    title = models.CharField(
        _("short title"),
        max_length=120,
        blank=True,
        help_text=_(
            'A few words shown under the name, for example "Special-occasion buyer".'
        ),
    )
    avatar = models.CharField(
        _("avatar"),
        max_length=8,
        blank=True,
        help_text=_("An emoji or initials shown on the card."),
    )
    photo_url = models.URLField(
        _("photo URL"), blank=True, help_text=_("Optional; replaces the avatar.")
    )
    status = models.CharField(
        _("status"), max_length=8, choices=Status, default=Status.DRAFT
    )
    priority = models.IntegerField(
        _("priority"),
        default=0,
        help_text=_(
            "A customer matching several personas gets the one with the largest "
            "priority (ties: the older persona)."
        ),
    )
    rules = models.JSONField(_("rules"), default=dict)

    # Who the persona is.
    age_min = models.PositiveSmallIntegerField(_("age from"), null=True, blank=True)
    age_max = models.PositiveSmallIntegerField(_("age to"), null=True, blank=True)
    gender = models.CharField(
        _("gender"), max_length=1, choices=Customer.Gender, blank=True
    )
    job_title = models.CharField(_("job title"), max_length=120, blank=True)
    family_situation = models.CharField(
        _("family situation"),
        max_length=16,
        choices=Customer.FamilySituation,
        blank=True,
    )
    income_band = models.CharField(
        _("income band"), max_length=16, choices=Customer.IncomeBand, blank=True
    )
    location = models.CharField(_("location"), max_length=120, blank=True)
    web_savviness = models.CharField(
        _("web savviness"), max_length=8, choices=Level, blank=True
    )

    # How the persona shops.
    research = models.TextField(_("how they research"), blank=True)
    buying_channels = models.JSONField(
        _("where they buy"),
        default=list,
        blank=True,
        help_text=_("Sales channels, most used first: store, online, phone."),
    )
    purchases_per_month = models.DecimalField(
        _("purchases per month"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Stated purchase frequency."),
    )
    typical_basket = models.DecimalField(
        _("typical basket"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Stated spend per visit."),
    )
    brand_loyalty = models.CharField(
        _("brand loyalty"), max_length=8, choices=Level, blank=True
    )

    # What drives the persona.
    goals = models.TextField(_("goals and needs"), blank=True)
    pain_points = models.TextField(_("pain points and objections"), blank=True)
    values = models.TextField(_("values"), blank=True)
    buying_role = models.CharField(
        _("role in the buying decision"), max_length=16, choices=BuyingRole, blank=True
    )
    social_influence = models.CharField(
        _("social influence"), max_length=8, choices=Level, blank=True
    )
    service_needs = models.TextField(_("customer service needs"), blank=True)

    # How to reach the persona.
    preferred_channels = models.JSONField(
        _("preferred channels"),
        default=list,
        blank=True,
        help_text=_("Contact channels in order of preference."),
    )
    message_tone = models.CharField(_("message tone"), max_length=200, blank=True)

    notes = models.TextField(_("notes"), blank=True)
    sources = models.JSONField(
        _("sources"),
        default=list,
        blank=True,
        help_text=_("The evidence the persona rests on."),
    )
    source_notes = models.TextField(_("about the sources"), blank=True)
    # For personas suggested from data: the cluster's description and figures.
    suggestion = models.JSONField(_("suggestion"), default=dict, blank=True)

    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["-priority", "id"]
        verbose_name = _("persona")
        verbose_name_plural = _("personas")
        constraints = [
            # A stated age range reads "from ... to ...": never upside down.
            models.CheckConstraint(
                condition=Q(age_min__isnull=True)
                | Q(age_max__isnull=True)
                | Q(age_min__lte=F("age_max")),
                name="persona_age_range_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.title})" if self.title else self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("admin:personas_persona_card", args=[self.pk])

    @property
    def query(self) -> str:
        from segments.query import format_rule

        return format_rule(self.rules)

    @property
    def initials(self) -> str:
        return self.avatar or "".join(word[:1] for word in self.name.split()[:2])

    @property
    def age_range(self) -> str:
        if self.age_min is not None and self.age_max is not None:
            return f"{self.age_min}-{self.age_max}"
        if self.age_min is not None:
            return f"{self.age_min}+"
        if self.age_max is not None:
            return f"≤ {self.age_max}"
        return ""


class PersonaAssignment(models.Model):
    """The persona a customer is assigned to now; written only by the engine."""

    customer = models.OneToOneField(
        "crm.Customer",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="persona_assignment",
    )
    persona = models.ForeignKey(
        Persona, on_delete=models.CASCADE, related_name="assignments"
    )
    assigned_at = models.DateTimeField(_("assigned at"))
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        verbose_name = _("persona assignment")
        verbose_name_plural = _("persona assignments")
        indexes = [models.Index(fields=["persona"])]

    def __str__(self) -> str:
        return f"{self.customer_id} is {self.persona_id}"


class PersonaChange(models.Model):
    """History: every change of a customer's persona, including to and from none."""

    class Cause(models.TextChoices):
        CONTACT = "contact", _("Contact")
        TIME = "time", _("Time passed")
        RECOMPUTE = "recompute", _("Recompute")

    customer = models.ForeignKey(
        "crm.Customer", on_delete=models.CASCADE, related_name="persona_changes"
    )
    from_persona = models.ForeignKey(
        Persona,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="changes_from",
    )
    to_persona = models.ForeignKey(
        Persona,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="changes_to",
    )
    occurred_at = models.DateTimeField(_("at"))
    cause = models.CharField(_("cause"), max_length=16, choices=Cause)
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("persona change")
        verbose_name_plural = _("persona changes")
        indexes = [
            models.Index(fields=["customer", "-occurred_at"]),
            models.Index(fields=["to_persona", "-occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_persona_id} → {self.to_persona_id}"


class PersonaFigures(models.Model):
    """The matched customers' real figures, computed set-based by
    `persona_figures_refresh` after each whole-base pass and on demand.

    Money figures cover the last `FIGURES_DAYS` days (see personas.services.figures).
    """

    persona = models.OneToOneField(
        Persona, on_delete=models.CASCADE, primary_key=True, related_name="figures"
    )
    computed_at = models.DateTimeField(_("computed at"))
    base_customers = models.PositiveIntegerField(_("customers in the base"))
    customers = models.PositiveIntegerField(_("assigned customers"))
    rule_matches = models.PositiveIntegerField(
        _("rule matches"), help_text=_("Customers the rule matches, before priority.")
    )
    buyers = models.PositiveIntegerField(_("buyers"))
    orders = models.PositiveIntegerField(_("orders"))
    revenue = models.DecimalField(_("revenue"), max_digits=16, decimal_places=2)
    margin = models.DecimalField(_("margin"), max_digits=16, decimal_places=2)
    service_effort = models.DecimalField(
        _("average service effort"), max_digits=5, decimal_places=2, null=True
    )
    email_openers = models.PositiveIntegerField(_("opened an email in 30 days"))
    channels = models.JSONField(_("orders per channel"), default=dict)
    ages = models.JSONField(_("customers per age band"), default=dict)
    median_age = models.PositiveSmallIntegerField(_("median age"), null=True)
    cities = models.JSONField(_("largest cities"), default=list)
    genders = models.JSONField(_("customers per gender"), default=dict)
    overlaps = models.JSONField(
        _("shared rule matches"),
        default=dict,
        help_text=_("Other persona id → customers both rules match."),
    )

    class Meta:
        verbose_name = _("persona figures")
        verbose_name_plural = _("persona figures")

    def __str__(self) -> str:
        return f"figures of {self.persona_id}"
