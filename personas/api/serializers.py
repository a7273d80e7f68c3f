"""Input and output shapes of personas, their members and their figures."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.models import Customer, SalesChannel

from ..forms import CONTACT_CHANNELS
from ..models import Persona

# The descriptive fields: who the persona is, how it shops, what drives it.
TRAIT_FIELDS = [
    "title",
    "avatar",
    "photo_url",
    "age_min",
    "age_max",
    "gender",
    "job_title",
    "family_situation",
    "income_band",
    "location",
    "web_savviness",
    "research",
    "buying_channels",
    "purchases_per_month",
    "typical_basket",
    "brand_loyalty",
    "goals",
    "pain_points",
    "values",
    "buying_role",
    "social_influence",
    "service_needs",
    "preferred_channels",
    "message_tone",
    "notes",
    "sources",
    "source_notes",
]


def _channel_list(choices, help_text):
    return serializers.ListField(
        child=serializers.ChoiceField(choices=choices),
        max_length=len(choices),
        required=False,
        help_text=help_text,
    )


class PersonaSerializer(serializers.ModelSerializer):
    query = serializers.CharField(
        read_only=True, help_text=_("The rules in the text language.")
    )
    customers = serializers.IntegerField(
        source="assigned",
        read_only=True,
        help_text=_("Customers assigned to the persona now."),
    )
    buying_channels = serializers.ListField(
        child=serializers.ChoiceField(choices=SalesChannel.choices), read_only=True
    )
    preferred_channels = serializers.ListField(
        child=serializers.ChoiceField(choices=CONTACT_CHANNELS), read_only=True
    )
    channel_preference = serializers.ListField(
        source="preferred_channels",
        child=serializers.ChoiceField(choices=CONTACT_CHANNELS),
        read_only=True,
        help_text=_("The same list as preferred_channels, named as on segments."),
    )
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=Persona.Source.choices), read_only=True
    )
    # Plain strings on output: an odd stored URL must not break the response.
    photo_url = serializers.CharField(read_only=True)

    class Meta:
        model = Persona
        fields = [
            "name",
            "slug",
            "status",
            "priority",
            "rules",
            "query",
            *TRAIT_FIELDS,
            "channel_preference",
            "customers",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class PersonaInputSerializer(serializers.ModelSerializer):
    """A persona's rule is `rules` (a JSON tree) or `query` (text), not both;
    the personas services check it and the slug."""

    slug = serializers.SlugField(
        max_length=64, required=False, help_text=_("Derived from the name if absent.")
    )
    rules = serializers.JSONField(required=False)
    query = serializers.CharField(max_length=10_000, required=False)
    priority = serializers.IntegerField(
        min_value=-1_000_000, max_value=1_000_000, required=False
    )
    buying_channels = _channel_list(
        SalesChannel.choices, _("Sales channels, most used first.")
    )
    preferred_channels = _channel_list(
        CONTACT_CHANNELS, _("Contact channels in order of preference.")
    )
    channel_preference = _channel_list(
        CONTACT_CHANNELS,
        _("Another name of preferred_channels (as on segments); give one of them."),
    )
    sources = serializers.ListField(
        child=serializers.ChoiceField(choices=Persona.Source.choices),
        max_length=len(Persona.Source.choices),
        required=False,
        help_text=_("The evidence the persona rests on."),
    )

    class Meta:
        model = Persona
        fields = [
            "name",
            "slug",
            "status",
            "priority",
            "rules",
            "query",
            *TRAIT_FIELDS,
            "channel_preference",
        ]
        extra_kwargs = {"status": {"required": False}}

    def validate(self, attrs):
        if "channel_preference" in attrs:
            alias = attrs.pop("channel_preference")
            if attrs.setdefault("preferred_channels", alias) != alias:
                raise serializers.ValidationError(
                    {
                        "channel_preference": serializers.ErrorDetail(
                            _(
                                "channel_preference and preferred_channels are the "
                                "same list; give one of them."
                            ),
                            code="alias_conflict",
                        )
                    }
                )
        for name in ("buying_channels", "preferred_channels", "sources"):
            if name in attrs:
                attrs[name] = list(dict.fromkeys(attrs[name]))
        age_min = attrs.get("age_min", getattr(self.instance, "age_min", None))
        age_max = attrs.get("age_max", getattr(self.instance, "age_max", None))
        if age_min is not None and age_max is not None and age_min > age_max:
            raise serializers.ValidationError(
                {
                    "age_max": serializers.ErrorDetail(
                        _("The age range ends before it starts."),
                        code="age_range",
                    )
                }
            )
        return attrs


class PersonaMemberSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, allow_null=True)
    name = serializers.CharField(source="full_name", read_only=True)
    assigned_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "email", "name", "assigned_at"]
        read_only_fields = fields


class CityCountSerializer(serializers.Serializer):
    city = serializers.CharField()
    customers = serializers.IntegerField()


MONEY = {"max_digits": 16, "decimal_places": 2}


class PersonaStatsSerializer(serializers.Serializer):
    """The matched customers' real figures; zeros and nulls before they are
    first computed (`computed_at` null)."""

    persona = serializers.SlugField()
    computed_at = serializers.DateTimeField(allow_null=True)
    figures_days = serializers.IntegerField(
        help_text=_("Money and order figures cover this many days.")
    )
    base_customers = serializers.IntegerField()
    customers = serializers.IntegerField()
    share = serializers.FloatField(help_text=_("Of all customers, 0 to 1."))
    rule_matches = serializers.IntegerField(
        help_text=_("Customers the rule matches, before priority.")
    )
    buyers = serializers.IntegerField()
    orders = serializers.IntegerField()
    revenue = serializers.DecimalField(**MONEY)
    margin = serializers.DecimalField(**MONEY)
    average_order_value = serializers.DecimalField(**MONEY, allow_null=True)
    orders_per_month = serializers.FloatField(
        allow_null=True, help_text=_("Per assigned customer.")
    )
    service_effort = serializers.DecimalField(
        max_digits=5, decimal_places=2, allow_null=True
    )
    email_openers = serializers.IntegerField(
        help_text=_("Customers who opened an email in the last 30 days.")
    )
    email_open_share = serializers.FloatField(allow_null=True)
    channels = serializers.DictField(
        child=serializers.IntegerField(), help_text=_("Orders per sales channel.")
    )
    ages = serializers.DictField(
        child=serializers.IntegerField(), help_text=_("Customers per age band.")
    )
    median_age = serializers.IntegerField(allow_null=True)
    genders = serializers.DictField(child=serializers.IntegerField())
    cities = CityCountSerializer(many=True)
    overlaps = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=_("Other active persona's slug: customers both rules match."),
    )
    service_cost = serializers.DecimalField(**MONEY)
    campaign_cost = serializers.DecimalField(**MONEY)
    roi = serializers.DecimalField(
        **MONEY, help_text=_("Margin less service and campaign costs, per year.")
    )
    notes = serializers.ListField(
        child=serializers.CharField(),
        help_text=_("Where the stated traits and the real customers differ."),
    )
