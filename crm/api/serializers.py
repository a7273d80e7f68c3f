"""Input and output shapes of the CRM resources.

Output serializers are read-only views of the models; input serializers only check
types and shapes. Writes, and the business rules, are the services' (crm.services),
called by the views with the validated data.
"""

import json
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field, inline_serializer
from phonenumber_field.serializerfields import PhoneNumberField
from rest_framework import serializers

from crm import hooks
from crm.models import (
    Category,
    Channel,
    Consent,
    Contact,
    Customer,
    CustomerStats,
    LoyaltyCard,
    LoyaltyTransaction,
    Product,
    PushToken,
    Receipt,
    ReceiptLine,
    SalesChannel,
    Store,
)
from crm.services.customers import CUSTOMER_FIELDS

# A contact's payload is free-form but bounded: it is stored with every event.
MAX_PAYLOAD_BYTES = 16_384
MAX_LINES = 500
# Times a little ahead of the server's clock are tolerated (tills' clocks drift).
CLOCK_SKEW = timedelta(minutes=5)


def not_in_future(value):
    if value is not None and value > timezone.now() + CLOCK_SKEW:
        raise serializers.ValidationError(_("This time lies in the future."), "future")
    return value


# Catalogue ---------------------------------------------------------------------


class StoreSerializer(serializers.ModelSerializer):
    # Plain strings: blank when unknown, which an "email" format would refuse.
    email = serializers.CharField(read_only=True)
    phone = serializers.CharField(read_only=True)

    class Meta:
        model = Store
        fields = [
            "code",
            "name",
            "address",
            "city",
            "postal_code",
            "country",
            "time_zone",
            "email",
            "phone",
        ]
        read_only_fields = fields


class CategorySerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )

    class Meta:
        model = Category
        fields = ["slug", "name", "parent"]
        read_only_fields = fields


class ProductSerializer(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Product
        fields = [
            "sku",
            "barcode",
            "name",
            "category",
            "price",
            "stock_level",
            "is_active",
        ]
        read_only_fields = fields


# Customers ---------------------------------------------------------------------


class CustomerStatsSerializer(serializers.ModelSerializer):
    favourite_category = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, allow_null=True
    )
    preferred_purchase_channel = serializers.ChoiceField(
        choices=SalesChannel.choices, allow_blank=True, read_only=True
    )

    class Meta:
        model = CustomerStats
        fields = [
            "orders",
            "total_spent",
            "avg_order_value",
            "first_purchase_at",
            "last_purchase_at",
            "last_contact_at",
            "orders_in_store",
            "orders_online",
            "orders_by_phone",
            "preferred_purchase_channel",
            "favourite_category",
        ]
        read_only_fields = fields


class CurrentConsentSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Consent.Status.choices)
    recorded_at = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=Consent.Source.choices)


CurrentConsentsSerializer = inline_serializer(
    name="CurrentConsents",
    fields={
        channel: CurrentConsentSerializer(
            allow_null=True, help_text=_("Latest decision; null if never asked.")
        )
        for channel in Channel.values
    },
)


class CustomerSerializer(serializers.ModelSerializer):
    # Imported addresses are kept as given; a strict "email" format would refuse
    # an odd one on output.
    email = serializers.CharField(read_only=True, allow_null=True)
    phone = serializers.CharField(read_only=True)
    home_store = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True
    )
    tags = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    stats = CustomerStatsSerializer(read_only=True, allow_null=True)
    consents = serializers.SerializerMethodField(
        help_text=_("The current consent per channel.")
    )

    class Meta:
        model = Customer
        fields = [
            "id",
            *CUSTOMER_FIELDS,
            "updated_at",
            "erased_at",
            "stats",
            "consents",
        ]
        read_only_fields = fields

    def get_fields(self):
        # What the apps built on crm know of a customer (segments, persona) comes
        # through a hook and is shown between the statistics and the consents.
        fields = super().get_fields()
        consents = fields.pop("consents")
        for contributed in hooks.customer_api_fields.send():
            fields.update(contributed)
        fields["consents"] = consents
        return fields

    @extend_schema_field(CurrentConsentsSerializer)
    def get_consents(self, customer: Customer) -> dict:
        current = getattr(customer, "api_current_consents", None)
        if current is None:
            current = customer.consents.latest_per_channel()
        by_channel = {consent.channel: consent for consent in current}
        return {
            channel: (
                CurrentConsentSerializer(by_channel[channel]).data
                if channel in by_channel
                else None
            )
            for channel in Channel.values
        }


class CustomerInputSerializer(serializers.ModelSerializer):
    """What a caller may set on a customer; the services check the rest."""

    email = serializers.EmailField(
        allow_null=True, allow_blank=True, required=False, max_length=254
    )
    phone = PhoneNumberField(allow_blank=True, required=False)
    home_store = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Store.objects.all(),
        allow_null=True,
        required=False,
        help_text=_("Store code."),
    )
    tags = serializers.ListField(
        child=serializers.CharField(max_length=64),
        max_length=50,
        required=False,
        help_text=_("Interests and tags; replaces the customer's tags."),
    )
    source = serializers.ChoiceField(
        choices=Customer.Source.choices,
        required=False,
        help_text=_("How the customer was registered; api when not given."),
    )
    created_at = serializers.DateTimeField(required=False, validators=[not_in_future])

    class Meta:
        model = Customer
        fields = list(CUSTOMER_FIELDS)


class ConsentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Consent
        fields = ["id", "channel", "status", "recorded_at", "source", "wording"]
        read_only_fields = fields


class ConsentInputSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Channel.choices)
    granted = serializers.BooleanField()
    wording = serializers.CharField(
        max_length=5000, help_text=_("The exact text the customer agreed to.")
    )
    source = serializers.ChoiceField(
        choices=Consent.Source.choices, default=Consent.Source.API
    )
    recorded_at = serializers.DateTimeField(required=False, validators=[not_in_future])


class PushTokenSerializer(serializers.ModelSerializer):
    class Meta:
        model = PushToken
        fields = ["token", "platform", "customer", "registered_at", "revoked_at"]
        read_only_fields = fields


class PushTokenInputSerializer(serializers.Serializer):
    token = serializers.CharField(
        max_length=PushToken._meta.get_field("token").max_length,
        help_text=_("The device token the push provider gave the app."),
    )
    platform = serializers.ChoiceField(choices=PushToken.Platform.choices)


# Loyalty -----------------------------------------------------------------------


class LoyaltyCardSerializer(serializers.ModelSerializer):
    issuing_store = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True
    )

    class Meta:
        model = LoyaltyCard
        fields = [
            "number",
            "customer",
            "tier",
            "status",
            "points",
            "issued_at",
            "issuing_store",
        ]
        read_only_fields = fields


class LoyaltyTransactionSerializer(serializers.ModelSerializer):
    class Meta:
        model = LoyaltyTransaction
        fields = ["id", "kind", "points", "receipt", "note", "created_at"]
        read_only_fields = fields


# Receipts ----------------------------------------------------------------------


class ReceiptLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)

    class Meta:
        model = ReceiptLine
        fields = ["sku", "quantity", "unit_price", "discount", "line_total"]
        read_only_fields = fields


class ReceiptSerializer(serializers.ModelSerializer):
    store = serializers.SlugRelatedField(slug_field="code", read_only=True)
    loyalty_card = serializers.SlugRelatedField(
        slug_field="number", read_only=True, allow_null=True
    )
    lines = ReceiptLineSerializer(many=True, read_only=True)

    class Meta:
        model = Receipt
        fields = [
            "id",
            "number",
            "store",
            "customer",
            "loyalty_card",
            "channel",
            "purchased_at",
            "total",
            "currency",
            "payment_method",
            "points_earned",
            "points_redeemed",
            "redeemed_value",
            "status",
            "voided_at",
            "void_reason",
            "email_status",
            "created_at",
            "lines",
        ]
        read_only_fields = fields


class ReceiptCreatedSerializer(ReceiptSerializer):
    """The receipt as receipt_record returns it, lines included: nothing is re-read."""

    lines = ReceiptLineSerializer(source="recorded_lines", many=True, read_only=True)
    customer_created = serializers.BooleanField(
        read_only=True,
        help_text=_("Whether customer_email registered a new customer."),
    )

    class Meta(ReceiptSerializer.Meta):
        fields = [*ReceiptSerializer.Meta.fields, "customer_created"]
        read_only_fields = fields


class ReceiptLineInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000)
    unit_price = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=0,
        required=False,
        allow_null=True,
        help_text=_("Defaults to the product's price."),
    )
    discount = serializers.DecimalField(
        max_digits=10, decimal_places=2, min_value=0, default="0.00"
    )


class ReceiptInputSerializer(serializers.Serializer):
    store = serializers.SlugField(max_length=32, help_text=_("Store code."))
    customer = serializers.IntegerField(
        min_value=1, allow_null=True, required=False, help_text=_("Customer id.")
    )
    customer_email = serializers.EmailField(
        allow_null=True,
        required=False,
        help_text=_("Finds the customer by email, or registers a new one."),
    )
    loyalty_card = serializers.CharField(
        max_length=19, allow_null=True, required=False, help_text=_("Card number.")
    )
    purchased_at = serializers.DateTimeField(
        required=False, help_text=_("Defaults to now.")
    )
    channel = serializers.ChoiceField(
        choices=SalesChannel.choices, default=SalesChannel.STORE
    )
    payment_method = serializers.ChoiceField(
        choices=Receipt.PaymentMethod.choices, default=Receipt.PaymentMethod.UNKNOWN
    )
    number = serializers.CharField(
        max_length=64,
        required=False,
        help_text=_("The till's own receipt number; numbered by the store if absent."),
    )
    total = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        required=False,
        help_text=_("When given, must equal the sum of the lines."),
    )
    points_redeemed = serializers.IntegerField(
        min_value=0, max_value=100_000_000, default=0
    )
    lines = ReceiptLineInputSerializer(
        many=True, allow_empty=False, max_length=MAX_LINES
    )
    send_email = serializers.BooleanField(default=False)

    def validate(self, attrs):
        if attrs.get("customer") and attrs.get("customer_email"):
            raise serializers.ValidationError(
                {
                    "customer_email": serializers.ErrorDetail(
                        _("Give the customer or customer_email, not both."),
                        code="customer_ambiguous",
                    )
                }
            )
        return attrs


class ReceiptVoidInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=200)


# Contacts ----------------------------------------------------------------------

# Sales and voids are recorded with their receipt, never as bare contacts.
RESERVED_KINDS = {Contact.Kind.PURCHASE, Contact.Kind.PURCHASE_VOIDED}
CONTACT_INPUT_KINDS = [
    choice for choice in Contact.Kind.choices if choice[0] not in RESERVED_KINDS
]
BULK_ITEM_STATUSES = [("created", "Created"), ("invalid", "Invalid")]


class ContactSerializer(serializers.ModelSerializer):
    store = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True
    )

    class Meta:
        model = Contact
        fields = [
            "id",
            "customer",
            "kind",
            "channel",
            "occurred_at",
            "store",
            "receipt",
            "payload",
            "created_at",
        ]
        read_only_fields = fields


class ContactInputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(
        min_value=1, allow_null=True, required=False, help_text=_("Customer id.")
    )
    customer_email = serializers.EmailField(
        allow_null=True,
        required=False,
        help_text=_("An existing customer's email, instead of the id."),
    )
    kind = serializers.ChoiceField(
        choices=CONTACT_INPUT_KINDS,
        help_text=_("Purchases are recorded by posting receipts."),
    )
    channel = serializers.ChoiceField(choices=Contact.ContactChannel.choices)
    occurred_at = serializers.DateTimeField(
        required=False, validators=[not_in_future], help_text=_("Defaults to now.")
    )
    store = serializers.SlugField(
        max_length=32, allow_null=True, required=False, help_text=_("Store code.")
    )
    payload = serializers.DictField(required=False, default=dict)

    def validate_payload(self, value):
        if len(json.dumps(value, default=str)) > MAX_PAYLOAD_BYTES:
            raise serializers.ValidationError(
                _("The payload is larger than %(max)d bytes.")
                % {"max": MAX_PAYLOAD_BYTES},
                "payload_too_large",
            )
        return value

    def validate(self, attrs):
        has_id = attrs.get("customer") is not None
        has_email = bool(attrs.get("customer_email"))
        if has_id == has_email:
            raise serializers.ValidationError(
                {
                    "customer": serializers.ErrorDetail(
                        _("Give the customer id or customer_email (one of them)."),
                        code="customer_required",
                    )
                }
            )
        return attrs


class ContactBulkInputSerializer(serializers.Serializer):
    contacts = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        max_length=1000,
        help_text=_("Up to 1,000 contacts, each shaped like a single contact."),
    )


class ContactBulkItemResultSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    status = serializers.ChoiceField(choices=BULK_ITEM_STATUSES)
    id = serializers.IntegerField(required=False)
    errors = serializers.ListField(
        child=inline_serializer(
            name="BulkItemError",
            fields={
                "field": serializers.CharField(allow_null=True),
                "code": serializers.CharField(),
                "message": serializers.CharField(),
            },
        ),
        required=False,
    )


class ContactBulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    invalid = serializers.IntegerField()
    results = ContactBulkItemResultSerializer(many=True)
