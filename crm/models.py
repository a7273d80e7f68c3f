"""The CRM core: who the customers are and every contact Loyalist has with them."""

import zoneinfo
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumValidationError

from .querysets import (
    ConsentQuerySet,
    CustomerQuerySet,
    ProductQuerySet,
    ReceiptQuerySet,
)


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(
            _("%(value)s is not a time zone name such as Europe/Amsterdam."),
            params={"value": value},
            code="invalid_time_zone",
        )


def validate_card_number(value: str) -> None:
    if not value.isdigit() or not 8 <= len(value) <= 19:
        raise ValidationError(
            _("A loyalty card number is 8 to 19 digits."), code="invalid_card_format"
        )
    try:
        luhn.validate(value)
    except StdnumValidationError:
        raise ValidationError(
            _("Card number %(value)s has a wrong check digit; re-type or re-scan it."),
            params={"value": value},
            code="invalid_check_digit",
        ) from None


class Channel(models.TextChoices):
    """Channels a customer can be reached on, and that consent is given for."""

    EMAIL = "email", _("Email")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push notification")
    SOCIAL_ADS = "social_ads", _("Social media audiences")
    POST = "post", _("Post")


class SalesChannel(models.TextChoices):
    STORE = "store", _("In store")
    ONLINE = "online", _("Online")
    PHONE = "phone", _("Phone")


class Store(models.Model):
    code = models.SlugField(
        _("code"), max_length=32, unique=True, help_text=_("Used by integrations.")
    )
    name = models.CharField(_("name"), max_length=120)
    address = models.CharField(_("address"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100)
    postal_code = models.CharField(_("postal code"), max_length=16, blank=True)
    country = models.CharField(_("country"), max_length=2, default="NL")
    time_zone = models.CharField(
        _("time zone"),
        max_length=64,
        default=settings.TIME_ZONE,
        validators=[validate_time_zone],
    )
    email = models.EmailField(_("email"), blank=True)
    phone = PhoneNumberField(_("phone"), blank=True)
    # Last receipt number handed out; incremented under a row lock by receipt_record.
    receipt_sequence = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name = _("store")
        verbose_name_plural = _("stores")

    def __str__(self) -> str:
        return self.name

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class StaffMember(models.Model):
    """Which store a member of staff (a clerk) works at."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="staff_member"
    )
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="staff_members"
    )

    class Meta:
        verbose_name = _("staff member")
        verbose_name_plural = _("staff members")

    def __str__(self) -> str:
        return f"{self.user} @ {self.store}"


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=64)
    slug = models.SlugField(_("slug"), max_length=64, unique=True)

    class Meta:
        ordering = ["slug"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    class Gender(models.TextChoices):
        FEMALE = "f", _("Female")
        MALE = "m", _("Male")
        OTHER = "x", _("Other")
        UNKNOWN = "", _("Unknown")

    class IncomeBand(models.TextChoices):
        LOW = "low", _("Low")
        LOWER_MIDDLE = "lower_middle", _("Lower middle")
        MIDDLE = "middle", _("Middle")
        UPPER_MIDDLE = "upper_middle", _("Upper middle")
        HIGH = "high", _("High")
        UNKNOWN = "", _("Unknown")

    class FamilySituation(models.TextChoices):
        SINGLE = "single", _("Single")
        COUPLE = "couple", _("Couple")
        YOUNG_CHILDREN = "young_children", _("Family with young children")
        OLDER_CHILDREN = "older_children", _("Family with older children")
        EMPTY_NEST = "empty_nest", _("Children left home")
        BUSINESS = "business", _("Business")
        UNKNOWN = "", _("Unknown")

    class PreferredChannel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        PUSH = "push", _("Push notification")
        SOCIAL = "social", _("Social media")
        POST = "post", _("Post")
        PHONE = "phone", _("Phone")
        UNKNOWN = "", _("Unknown")

    class Source(models.TextChoices):
        STORE = "store", _("Store")
        ONLINE = "online", _("Online")
        IMPORT = "import", _("Import")
        API = "api", _("API")

    # NULL, not "", for phone-only customers: the unique constraint must skip them.
    email = models.EmailField(_("email"), null=True, blank=True)  # noqa: DJ001
    phone = PhoneNumberField(_("phone"), blank=True, db_index=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    gender = models.CharField(
        _("gender"), max_length=1, choices=Gender, default=Gender.UNKNOWN, blank=True
    )
    address = models.CharField(_("address"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=16, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    region = models.CharField(_("region"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, default="NL")
    income_band = models.CharField(
        _("income band"), max_length=16, choices=IncomeBand, blank=True
    )
    occupation = models.CharField(_("occupation"), max_length=100, blank=True)
    family_situation = models.CharField(
        _("family situation"), max_length=16, choices=FamilySituation, blank=True
    )
    tags = models.ManyToManyField(
        Tag, verbose_name=_("interests and tags"), blank=True, related_name="customers"
    )
    preferred_channel = models.CharField(
        _("preferred channel"), max_length=8, choices=PreferredChannel, blank=True
    )
    language = models.CharField(_("language"), max_length=8, default="nl")
    social_followers = models.PositiveIntegerField(
        _("social followers"), default=0, help_text=_("Reach on social media.")
    )
    service_effort = models.PositiveSmallIntegerField(
        _("service effort"),
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("1-10: how much help this customer usually needs."),
    )
    home_store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="home_customers",
    )
    source = models.CharField(
        _("source"), max_length=8, choices=Source, default=Source.STORE
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    # Set by customer_erase: the personal data is gone, the anonymous record of
    # purchases stays (bookkeeping keeps sales for years).
    erased_at = models.DateTimeField(
        _("personal data erased at"), null=True, blank=True
    )

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        constraints = [
            # One customer per address, however the clerk typed its capitals.
            models.UniqueConstraint(Lower("email"), name="customer_email_ci_unique"),
            models.CheckConstraint(
                condition=Q(service_effort__gte=1, service_effort__lte=10),
                name="customer_service_effort_1_10",
            ),
        ]
        indexes = [
            models.Index(fields=["city"]),
            models.Index(fields=["postal_code"]),
            models.Index(fields=["last_name", "first_name"]),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or str(self.phone) or f"#{self.pk}"

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("admin:crm_customer_change", args=[self.pk])

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class PushToken(models.Model):
    """A device token the shop's app registered for push messages to a customer."""

    class Platform(models.TextChoices):
        IOS = "ios", _("iOS")
        ANDROID = "android", _("Android")
        WEB = "web", _("Web push")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="push_tokens"
    )
    # The provider's token is the device's address; one device belongs to one
    # customer at a time (re-registering it moves it).
    token = models.CharField(_("token"), max_length=400, unique=True)
    platform = models.CharField(_("platform"), max_length=8, choices=Platform)
    registered_at = models.DateTimeField(_("registered at"), default=timezone.now)
    # Set when the provider reports the token dead or the app signs out.
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-registered_at", "-id"]
        verbose_name = _("push token")
        verbose_name_plural = _("push tokens")
        indexes = [
            models.Index(
                fields=["customer"],
                condition=Q(revoked_at__isnull=True),
                name="pushtoken_live_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_platform_display()} token of {self.customer_id}"


class Consent(models.Model):
    """Append-only ledger: the latest entry per channel is the customer's consent."""

    class Status(models.TextChoices):
        GRANTED = "granted", _("Granted")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Source(models.TextChoices):
        STORE = "store", _("At the till")
        ONLINE = "online", _("Online")
        EMAIL_LINK = "email_link", _("Link in an email")
        IMPORT = "import", _("Import")
        API = "api", _("API")
        ADMIN = "admin", _("Staff")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="consents"
    )
    channel = models.CharField(_("channel"), max_length=16, choices=Channel)
    status = models.CharField(_("status"), max_length=16, choices=Status)
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)
    source = models.CharField(_("source"), max_length=16, choices=Source)
    wording = models.TextField(
        _("wording shown"), help_text=_("The exact text the customer agreed to.")
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="recorded_consents",
    )

    objects = ConsentQuerySet.as_manager()

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = _("consent")
        verbose_name_plural = _("consents")
        indexes = [
            models.Index(
                fields=["customer", "channel", "-recorded_at", "-id"],
                name="consent_latest_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()}: {self.get_status_display()}"


class LoyaltyCard(models.Model):
    class Tier(models.TextChoices):
        BASIC = "basic", _("Basic")
        SILVER = "silver", _("Silver")
        GOLD = "gold", _("Gold")
        PLATINUM = "platinum", _("Platinum")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        BLOCKED = "blocked", _("Blocked")
        LOST = "lost", _("Lost")

    number = models.CharField(
        _("number"), max_length=19, unique=True, validators=[validate_card_number]
    )
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="loyalty_cards",
    )
    tier = models.CharField(_("tier"), max_length=16, choices=Tier, default=Tier.BASIC)
    status = models.CharField(
        _("status"), max_length=16, choices=Status, default=Status.ACTIVE
    )
    # Running sum of the transaction ledger, kept in step by the loyalty services.
    points = models.IntegerField(_("points"), default=0, editable=False)
    issued_at = models.DateTimeField(_("issued at"), default=timezone.now)
    issuing_store = models.ForeignKey(
        Store,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="issued_cards",
    )

    class Meta:
        ordering = ["number"]
        verbose_name = _("loyalty card")
        verbose_name_plural = _("loyalty cards")
        constraints = [
            # Redemptions may never spend points that were not earned.
            models.CheckConstraint(
                condition=Q(points__gte=0), name="loyaltycard_points_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.number


class LoyaltyTransaction(models.Model):
    class Kind(models.TextChoices):
        EARNED = "earned", _("Earned")
        REDEEMED = "redeemed", _("Redeemed")
        ADJUSTED = "adjusted", _("Adjusted")
        EXPIRED = "expired", _("Expired")

    card = models.ForeignKey(
        LoyaltyCard, on_delete=models.PROTECT, related_name="transactions"
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind)
    points = models.IntegerField(_("points"), help_text=_("Negative when spent."))
    receipt = models.ForeignKey(
        "crm.Receipt",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="loyalty_transactions",
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("loyalty transaction")
        verbose_name_plural = _("loyalty transactions")
        constraints = [
            # The sign follows the kind, so the ledger reads the same in every report.
            models.CheckConstraint(
                condition=~Q(points=0)
                & (
                    Q(kind="earned", points__gt=0)
                    | Q(kind__in=["redeemed", "expired"], points__lt=0)
                    | Q(kind="adjusted")
                ),
                name="loyaltytransaction_sign_matches_kind",
            ),
        ]
        indexes = [models.Index(fields=["card", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.points:+d}"


class Category(models.Model):
    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("category")
        verbose_name_plural = _("categories")

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    barcode = models.CharField(
        _("barcode"), max_length=32, unique=True, null=True, blank=True
    )
    name = models.CharField(_("name"), max_length=200)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products"
    )
    price = models.DecimalField(_("price"), max_digits=10, decimal_places=2)
    cost = models.DecimalField(
        _("cost"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text=_("Purchase cost, for margin."),
    )
    stock_level = models.IntegerField(_("stock level"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        verbose_name = _("product")
        verbose_name_plural = _("products")
        constraints = [
            models.CheckConstraint(
                condition=Q(price__gte=0) & Q(cost__gte=0),
                name="product_price_cost_gte_0",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Receipt(models.Model):
    class Status(models.TextChoices):
        COMPLETED = "completed", _("Completed")
        VOIDED = "voided", _("Voided")

    class PaymentMethod(models.TextChoices):
        CARD = "card", _("Debit or credit card")
        CASH = "cash", _("Cash")
        MOBILE = "mobile", _("Mobile payment")
        GIFT_CARD = "gift_card", _("Gift card")
        INVOICE = "invoice", _("Invoice")
        ONLINE = "online", _("Online payment")
        UNKNOWN = "unknown", _("Not recorded")

    class EmailStatus(models.TextChoices):
        NOT_REQUESTED = "", _("Not requested")
        PENDING = "pending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    number = models.CharField(_("receipt number"), max_length=64)
    # No index of its own: the composite index below starts with it (one index
    # fewer to write on every sale).
    store = models.ForeignKey(
        Store, on_delete=models.PROTECT, related_name="receipts", db_index=False
    )
    clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="receipts",
    )
    # No index of its own: the composite index below starts with it (one index
    # fewer to write on every sale).
    customer = models.ForeignKey(
        Customer,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="receipts",
        db_index=False,
    )
    loyalty_card = models.ForeignKey(
        LoyaltyCard,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="receipts",
    )
    channel = models.CharField(
        _("channel"), max_length=8, choices=SalesChannel, default=SalesChannel.STORE
    )
    purchased_at = models.DateTimeField(_("purchased at"), default=timezone.now)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3, default="EUR")
    payment_method = models.CharField(
        _("payment method"), max_length=16, choices=PaymentMethod
    )
    points_earned = models.IntegerField(_("points earned"), default=0)
    points_redeemed = models.IntegerField(_("points redeemed"), default=0)
    redeemed_value = models.DecimalField(
        _("paid with points"), max_digits=12, decimal_places=2, default=Decimal("0")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status, default=Status.COMPLETED
    )
    idempotency_key = models.CharField(
        _("idempotency key"), max_length=64, null=True, blank=True, unique=True
    )
    email_status = models.CharField(
        _("email status"), max_length=8, choices=EmailStatus, blank=True, default=""
    )
    emailed_at = models.DateTimeField(_("emailed at"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)
    void_reason = models.CharField(_("void reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    objects = ReceiptQuerySet.as_manager()

    class Meta:
        ordering = ["-purchased_at", "-id"]
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        constraints = [
            models.UniqueConstraint(
                fields=["store", "number"], name="receipt_number_unique_per_store"
            ),
            models.CheckConstraint(
                condition=Q(total__gte=0)
                & Q(points_earned__gte=0)
                & Q(points_redeemed__gte=0)
                & Q(redeemed_value__gte=0)
                & Q(redeemed_value__lte=F("total")),
                name="receipt_amounts_valid",
            ),
            # A voided receipt always says when and why.
            models.CheckConstraint(
                condition=Q(status="completed", voided_at__isnull=True)
                | Q(status="voided", voided_at__isnull=False),
                name="receipt_void_has_timestamp",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "purchased_at"]),
            models.Index(fields=["store", "-purchased_at"]),
            models.Index(fields=["-purchased_at"]),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def amount_paid(self) -> Decimal:
        return self.total - self.redeemed_value


class ReceiptLine(models.Model):
    receipt = models.ForeignKey(Receipt, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="receipt_lines"
    )
    quantity = models.PositiveIntegerField(_("quantity"))
    unit_price = models.DecimalField(_("unit price"), max_digits=10, decimal_places=2)
    discount = models.DecimalField(
        _("discount"), max_digits=10, decimal_places=2, default=Decimal("0.00")
    )
    line_total = models.DecimalField(_("line total"), max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["id"]
        verbose_name = _("receipt line")
        verbose_name_plural = _("receipt lines")
        constraints = [
            # line_total = quantity * unit_price - discount is computed by the
            # receipt service in Decimal; SQLite compares decimals as floats, so the
            # equality itself is not a database check.
            models.CheckConstraint(
                condition=Q(quantity__gt=0)
                & Q(unit_price__gte=0)
                & Q(discount__gte=0)
                & Q(line_total__gte=0),
                name="receiptline_amounts_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"


class Contact(models.Model):
    """One touchpoint with a customer: the raw material of segments."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", _("Purchase")
        PURCHASE_VOIDED = "purchase_voided", _("Purchase voided")
        CARD_SCAN = "card_scan", _("Loyalty card scan")
        EMAIL_OPEN = "email_open", _("Email opened")
        EMAIL_CLICK = "email_click", _("Email link clicked")
        SMS_CLICK = "sms_click", _("SMS link clicked")
        WEB_VISIT = "web_visit", _("Web visit")
        CART_ABANDONED = "cart_abandoned", _("Cart abandoned")
        WISHLIST_ADD = "wishlist_add", _("Added to wishlist")
        SUPPORT_TICKET = "support_ticket", _("Support contact")
        SURVEY_RESPONSE = "survey_response", _("Survey response")
        REVIEW = "review", _("Product review")
        SOCIAL_MENTION = "social_mention", _("Social media mention")
        UNSUBSCRIBE = "unsubscribe", _("Unsubscribed")
        # Campaign messages the customer received (campaigns records them).
        MESSAGE_RECEIVED = "message_received", _("Campaign message received")
        EMAIL_BOUNCE = "email_bounce", _("Email bounced")
        PROFILE_UPDATE = "profile_update", _("Profile updated")

    class ContactChannel(models.TextChoices):
        STORE = "store", _("Store")
        ONLINE = "online", _("Web shop")
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        PHONE = "phone", _("Phone")
        SOCIAL = "social", _("Social media")
        APP = "app", _("App")
        POST = "post", _("Post")

    # No index of its own: the composite index below starts with it (one index
    # fewer to write on every sale).
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="contacts", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=24, choices=Kind)
    channel = models.CharField(_("channel"), max_length=8, choices=ContactChannel)
    occurred_at = models.DateTimeField(_("occurred at"), default=timezone.now)
    store = models.ForeignKey(
        Store, on_delete=models.SET_NULL, null=True, blank=True, related_name="contacts"
    )
    receipt = models.ForeignKey(
        Receipt,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="contacts",
    )
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    created_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        indexes = [
            models.Index(fields=["customer", "-occurred_at"]),
            models.Index(fields=["kind", "-occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} at {self.occurred_at:%Y-%m-%d %H:%M}"


class CustomerStats(models.Model):
    """Per-customer purchase figures, kept by services in the receipt's transaction."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="stats"
    )
    orders = models.PositiveIntegerField(_("orders"), default=0)
    total_spent = models.DecimalField(
        _("total spent"), max_digits=14, decimal_places=2, default=Decimal("0")
    )
    avg_order_value = models.DecimalField(
        _("average order value"), max_digits=12, decimal_places=2, default=Decimal("0")
    )
    first_purchase_at = models.DateTimeField(_("first purchase"), null=True)
    last_purchase_at = models.DateTimeField(_("last purchase"), null=True)
    last_contact_at = models.DateTimeField(_("last contact"), null=True)
    orders_in_store = models.PositiveIntegerField(_("orders in store"), default=0)
    orders_online = models.PositiveIntegerField(_("orders online"), default=0)
    orders_by_phone = models.PositiveIntegerField(_("orders by phone"), default=0)
    preferred_purchase_channel = models.CharField(
        _("preferred purchase channel"),
        max_length=8,
        choices=SalesChannel,
        blank=True,
    )
    favourite_category = models.ForeignKey(
        Category,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(_("updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("customer statistics")
        verbose_name_plural = _("customer statistics")
        indexes = [
            models.Index(fields=["last_purchase_at"]),
            models.Index(fields=["total_spent"]),
        ]

    def __str__(self) -> str:
        return f"stats of customer {self.customer_id}"


class CustomerCategoryStats(models.Model):
    """What a customer bought per category: "categories bought" and favourites."""

    # No indexes of their own: the unique constraint starts with the customer, an
    # index below with the category.
    customer = models.ForeignKey(
        Customer,
        on_delete=models.CASCADE,
        related_name="category_stats",
        db_index=False,
    )
    category = models.ForeignKey(
        Category,
        on_delete=models.CASCADE,
        related_name="customer_stats",
        db_index=False,
    )
    orders = models.PositiveIntegerField(_("orders"))
    quantity = models.PositiveIntegerField(_("quantity"))
    spent = models.DecimalField(_("spent"), max_digits=14, decimal_places=2)
    last_purchase_at = models.DateTimeField(_("last purchase"))

    class Meta:
        verbose_name = _("customer category statistics")
        verbose_name_plural = _("customer category statistics")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "category"], name="customercategorystats_unique"
            )
        ]
        indexes = [models.Index(fields=["category", "last_purchase_at"])]

    def __str__(self) -> str:
        return f"{self.customer_id} / {self.category_id}"


class MemberExport(models.Model):
    """One download of a segment's or a persona's members: who, when, what, how many.

    Written by crm.services.member_export_start before the first row leaves and
    completed by member_export_finish once the last row was written (or the
    download stopped), so an export that never finished is in the log too.
    """

    exported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        # An audit log that forgets who exported is worthless: deactivate staff
        # accounts rather than delete them.
        on_delete=models.PROTECT,
        related_name="member_exports",
        verbose_name=_("exported by"),
    )
    exported_at = models.DateTimeField(_("exported at"), default=timezone.now)
    # What was exported: a segment or a persona, named by content type so the
    # core knows no app built on it.
    content_type = models.ForeignKey(
        "contenttypes.ContentType",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("kind"),
    )
    object_id = models.PositiveBigIntegerField(_("object id"))
    label = models.CharField(
        _("name"), max_length=200, help_text=_("Its name at the time of the export.")
    )
    channels = models.JSONField(
        _("channels included"),
        default=list,
        help_text=_("Channels whose contact details were filled in where consented."),
    )
    rows = models.PositiveIntegerField(_("rows"), default=0)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-exported_at", "-id"]
        verbose_name = _("member export")
        verbose_name_plural = _("member exports")
        indexes = [models.Index(fields=["content_type", "object_id"])]

    def __str__(self) -> str:
        return f"{self.label} ({timezone.localtime(self.exported_at):%Y-%m-%d %H:%M})"


from .api.models import ApiToken, IdempotencyRecord  # noqa: E402,F401
from .webhooks.models import WebhookDelivery, WebhookSubscription  # noqa: E402,F401
