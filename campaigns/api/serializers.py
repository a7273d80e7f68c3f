"""Input and output shapes of campaigns and their deliveries."""

from decimal import Decimal

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.models import Channel
from personas.models import Persona
from segments.models import Segment

from ..models import Campaign, Delivery, Message


def _segments(**kwargs):
    return serializers.SlugRelatedField(
        slug_field="slug", queryset=Segment.objects.all(), **kwargs
    )


def _personas(**kwargs):
    return serializers.SlugRelatedField(
        slug_field="slug", queryset=Persona.objects.all(), **kwargs
    )


class AudienceSerializer(serializers.Serializer):
    include_segments = _segments(many=True, required=False)
    include_personas = _personas(many=True, required=False)
    exclude_segments = _segments(many=True, required=False)


class TriggerSerializer(serializers.Serializer):
    segment = _segments(
        allow_null=True,
        required=False,
        help_text=_("Customers entering this segment get the campaign."),
    )
    delay_minutes = serializers.IntegerField(min_value=0, max_value=525_600, default=0)
    reentry_days = serializers.IntegerField(
        min_value=1,
        max_value=32_767,
        default=30,
        help_text=_("Not again to the same customer within this many days."),
    )


class MessageSerializer(serializers.ModelSerializer):
    segment = _segments(allow_null=True, required=False)
    persona = _personas(allow_null=True, required=False)
    weight = serializers.IntegerField(min_value=1, max_value=1000, required=False)

    class Meta:
        model = Message
        fields = list(Message.EDITABLE_FIELDS)


class CampaignInputSerializer(serializers.Serializer):
    """A campaign's fields; the services check the rest (templates, the rule,
    what scheduling needs)."""

    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(
        max_length=64, required=False, help_text=_("Derived from the name if absent.")
    )
    description = serializers.CharField(allow_blank=True, required=False)
    kind = serializers.ChoiceField(choices=Campaign.Kind.choices, required=False)
    audience = AudienceSerializer(required=False)
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        max_length=len(Channel.choices),
        required=False,
        help_text=_("Default channel order, for customers no preference reaches."),
    )
    holdout_percent = serializers.IntegerField(
        min_value=0, max_value=90, required=False
    )
    priority = serializers.IntegerField(
        min_value=-1_000_000, max_value=1_000_000, required=False
    )
    frequency_cap = serializers.IntegerField(
        min_value=1, max_value=1000, allow_null=True, required=False
    )
    frequency_window_days = serializers.IntegerField(
        min_value=1, max_value=365, allow_null=True, required=False
    )
    send_at = serializers.DateTimeField(allow_null=True, required=False)
    recurrence = serializers.CharField(
        allow_blank=True,
        max_length=2000,
        required=False,
        help_text=_(
            "An RFC 5545 rule in the shop's time zone: \"DTSTART:20270104T090000"
            '\\nRRULE:FREQ=WEEKLY;BYDAY=MO".'
        ),
    )
    trigger = TriggerSerializer(required=False, allow_null=True)
    messages = MessageSerializer(many=True, required=False)
    costs = serializers.DictField(
        child=serializers.DecimalField(
            max_digits=8, decimal_places=4, min_value=Decimal(0)
        ),
        required=False,
        help_text=_('Cost per message per channel: {"sms": "0.07"}.'),
    )
    attribution_days = serializers.IntegerField(
        min_value=1, max_value=365, required=False
    )

    def validate_channels(self, value):
        return list(dict.fromkeys(value))

    def validate_costs(self, value):
        return {channel: str(cost) for channel, cost in value.items()}

    def validate_audience(self, value):
        return {key: list(items) for key, items in value.items()}


class CampaignChangeInputSerializer(CampaignInputSerializer):
    """A change to a campaign: the same fields, but the slug is the campaign's
    identity (URLs and reports name it), so one sent is ignored."""

    slug = serializers.SlugField(read_only=True)


class CampaignSerializer(serializers.ModelSerializer):
    audience = serializers.SerializerMethodField()
    trigger = serializers.SerializerMethodField()
    messages = MessageSerializer(many=True, read_only=True)
    counts = serializers.SerializerMethodField(
        help_text=_("Deliveries per status, over all runs.")
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "slug",
            "description",
            "kind",
            "status",
            "audience",
            "channels",
            "holdout_percent",
            "priority",
            "frequency_cap",
            "frequency_window_days",
            "send_at",
            "recurrence",
            "trigger",
            "messages",
            "costs",
            "attribution_days",
            "next_run_at",
            "counts",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_audience(self, campaign) -> dict[str, list[str]]:
        return {
            key: [item.slug for item in getattr(campaign, key).all()]
            for key in ("include_segments", "include_personas", "exclude_segments")
        }

    def get_trigger(self, campaign) -> dict:
        segment = campaign.trigger_segment
        return {
            "segment": segment.slug if segment else None,
            "delay_minutes": campaign.trigger_delay_minutes,
            "reentry_days": campaign.trigger_reentry_days,
        }

    def get_counts(self, campaign) -> dict[str, int]:
        counts = self.context.get("counts", {})
        return counts.get(campaign.pk) or dict.fromkeys(Delivery.Status.values, 0)


class DeliverySerializer(serializers.ModelSerializer):
    message = serializers.CharField(
        source="message.name", allow_null=True, read_only=True
    )

    class Meta:
        model = Delivery
        fields = [
            "id",
            "customer",
            "channel",
            "message",
            "status",
            "reason",
            "planned_at",
            "sent_at",
        ]
        read_only_fields = fields


class ScheduleSerializer(serializers.Serializer):
    campaign = serializers.SlugField()
    status = serializers.CharField()
    next_run_at = serializers.DateTimeField(allow_null=True)


class AudiencePreviewSerializer(serializers.Serializer):
    """What a run planned now would do, without writing anything."""

    audience = serializers.IntegerField(help_text=_("Customers in the audience."))
    held_out = serializers.IntegerField(help_text=_("In the control group."))
    planned = serializers.IntegerField(help_text=_("Would get a message now."))
    deferred = serializers.IntegerField(help_text=_("Would get it after quiet hours."))
    skipped = serializers.IntegerField(help_text=_("No usable channel, or capped."))
    by_channel = serializers.DictField(
        child=serializers.IntegerField(),
        help_text=_("Planned and deferred messages per channel."),
    )
    skipped_reasons = serializers.DictField(
        child=serializers.IntegerField(), help_text=_("Skipped customers per reason.")
    )
