"""Webhook subscriptions over the API, with their delivery log."""

from django.db import transaction
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.models import Channel
from crm.webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from crm.webhooks.services import (
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_secret_rotate,
    webhook_subscription_update,
)

from .permissions import ADMIN, MARKETERS_ONLY, api_roles
from .views import ERROR_RESPONSES, ApiViewSetMixin


class WebhookSubscriptionSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices)
    )
    segments = serializers.ListField(child=serializers.SlugField())
    consent_channel = serializers.ChoiceField(
        choices=Channel.choices, allow_blank=True, read_only=True
    )
    secret = serializers.CharField(
        read_only=True,
        help_text=_(
            "Deliveries carry X-Loyalist-Signature: sha256=<hex HMAC-SHA256 of the "
            "body with this secret>."
        ),
    )

    class Meta:
        model = WebhookSubscription
        fields = [
            "id",
            "name",
            "url",
            "events",
            "segments",
            "consent_channel",
            "is_active",
            "secret",
            "created_at",
        ]
        read_only_fields = fields


class WebhookSubscriptionInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    url = serializers.URLField(max_length=500)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices),
        allow_empty=False,
        max_length=len(WebhookEvent.values),
    )
    segments = serializers.ListField(
        child=serializers.SlugField(max_length=64),
        required=False,
        max_length=200,
        help_text=_("Only these segments' events; all segments when empty."),
    )
    consent_channel = serializers.ChoiceField(
        choices=Channel.choices,
        required=False,
        allow_blank=True,
        help_text=_(
            "The channel the receiver uses the data for (social_ads for an ad "
            "platform): events about customers without a current grant on it are "
            "left out. Blank for systems that do not market to the customers."
        ),
    )
    is_active = serializers.BooleanField(required=False)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "event",
            "status",
            "attempts",
            "last_status_code",
            "attempt_log",
            "next_attempt_at",
            "delivered_at",
            "created_at",
        ]
        read_only_fields = fields


@extend_schema_view(
    list=extend_schema(summary="List webhook subscriptions"),
    retrieve=extend_schema(summary="A webhook subscription"),
    create=extend_schema(
        summary="Subscribe a URL to events",
        request=WebhookSubscriptionInputSerializer,
        responses={201: WebhookSubscriptionSerializer, 400: ERROR_RESPONSES[400]},
    ),
    update=extend_schema(
        summary="Change a subscription",
        request=WebhookSubscriptionInputSerializer,
        responses={200: WebhookSubscriptionSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change some of a subscription's fields",
        request=WebhookSubscriptionInputSerializer,
        responses={200: WebhookSubscriptionSerializer, **ERROR_RESPONSES},
    ),
    destroy=extend_schema(summary="Unsubscribe (the delivery log goes too)"),
)
class WebhookSubscriptionViewSet(ApiViewSetMixin, viewsets.ModelViewSet):
    """Subscriptions: marketers see their own, admins everyone's."""

    queryset = WebhookSubscription.objects.none()
    serializer_class = WebhookSubscriptionSerializer
    filterset_fields = ["is_active"]
    lookup_value_regex = "[0-9]+"
    read_roles = MARKETERS_ONLY
    write_roles = MARKETERS_ONLY

    def scoped_queryset(self):
        subscriptions = WebhookSubscription.objects.all()
        if ADMIN in api_roles(self.request.user):
            return subscriptions
        return subscriptions.filter(owner=self.request.user)

    def create(self, request):
        serializer = WebhookSubscriptionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            subscription = webhook_subscription_create(
                owner=request.user, **serializer.validated_data
            )
        return Response(
            WebhookSubscriptionSerializer(subscription).data,
            status=status.HTTP_201_CREATED,
        )

    def update(self, request, pk=None, partial=False):
        subscription = self.get_object()
        serializer = WebhookSubscriptionInputSerializer(
            data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        subscription = webhook_subscription_update(
            subscription=subscription, **serializer.validated_data
        )
        return Response(WebhookSubscriptionSerializer(subscription).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    def destroy(self, request, pk=None):
        webhook_subscription_delete(subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Replace the signing secret",
        request=None,
        responses={200: WebhookSubscriptionSerializer},
    )
    @action(
        detail=True, methods=["post"], url_path="rotate-secret", filterset_class=None
    )
    def rotate_secret(self, request, pk=None):
        subscription = webhook_subscription_secret_rotate(
            subscription=self.get_object()
        )
        return Response(WebhookSubscriptionSerializer(subscription).data)

    @extend_schema(
        summary="The subscription's deliveries, newest first, with every attempt",
        responses={200: WebhookDeliverySerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_fields=["status", "event"],
        queryset=WebhookDelivery.objects.none(),
    )
    def deliveries(self, request, pk=None):
        subscription = self.get_object()
        deliveries = self.filter_queryset(subscription.deliveries.all())
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(
            WebhookDeliverySerializer(page, many=True).data
        )
