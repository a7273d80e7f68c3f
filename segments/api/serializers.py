"""Input and output shapes of segments, their members and their history."""

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from crm.models import Channel, Customer

from ..models import Segment, SegmentEvent


def explanation_json(tree: dict) -> Any:
    """An explanation tree with its dates, times and decimals as JSON strings."""
    return json.loads(json.dumps(tree, cls=DjangoJSONEncoder))


class SegmentSerializer(serializers.ModelSerializer):
    query = serializers.CharField(
        read_only=True, help_text=_("The rules in the text language.")
    )

    class Meta:
        model = Segment
        fields = [
            "name",
            "slug",
            "description",
            "kind",
            "rules",
            "query",
            "is_active",
            "channel_preference",
            "size",
            "last_computed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class SegmentInputSerializer(serializers.Serializer):
    """A segment's rule is `rules` (a JSON tree) or `query` (text), not both."""

    name = serializers.CharField(max_length=120)
    slug = serializers.SlugField(
        max_length=64, required=False, help_text=_("Derived from the name if absent.")
    )
    description = serializers.CharField(allow_blank=True, required=False)
    kind = serializers.ChoiceField(choices=Segment.Kind.choices, required=False)
    rules = serializers.JSONField(required=False)
    query = serializers.CharField(max_length=10_000, required=False)
    is_active = serializers.BooleanField(required=False)
    channel_preference = serializers.ListField(
        child=serializers.ChoiceField(choices=Channel.choices),
        max_length=len(Channel.choices),
        required=False,
        help_text=_(
            "Channels to reach the members on, in order; campaigns use the first "
            "that reaches a customer."
        ),
    )


class SegmentPreviewInputSerializer(serializers.Serializer):
    rules = serializers.JSONField(required=False)
    query = serializers.CharField(max_length=10_000, required=False)
    limit = serializers.IntegerField(min_value=1, max_value=100, default=20)


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, allow_null=True)
    name = serializers.CharField(source="full_name", read_only=True)
    entered_at = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "email", "name", "entered_at"]
        read_only_fields = fields


class PreviewCustomerSerializer(serializers.ModelSerializer):
    email = serializers.CharField(read_only=True, allow_null=True)
    name = serializers.CharField(source="full_name", read_only=True)

    class Meta:
        model = Customer
        fields = ["id", "email", "name"]
        read_only_fields = fields


class SegmentPreviewSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    rules = serializers.JSONField()
    query = serializers.CharField()
    sample = PreviewCustomerSerializer(many=True)


class SegmentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = SegmentEvent
        fields = ["id", "customer", "kind", "cause", "occurred_at", "contact"]
        read_only_fields = fields


class RecomputeSerializer(serializers.Serializer):
    segment = serializers.SlugField()
    status = serializers.CharField()
