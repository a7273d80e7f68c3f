"""Campaigns over the REST API: CRUD of drafts, the lifecycle, deliveries."""

from dataclasses import asdict

from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.api.permissions import MARKETERS_ONLY, SEE_ALL
from crm.api.views import ERROR_RESPONSES, ApiViewSetMixin

from ..models import Campaign, Delivery
from ..selectors import campaign_delivery_list, campaign_list, delivery_counts
from ..services.campaigns import (
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_update,
)
from ..services.planning import audience_preview
from . import filters, serializers


def _lifecycle_schema(summary: str, code: int = 200):
    return extend_schema(
        summary=summary,
        request=None,
        responses={code: serializers.CampaignSerializer, **ERROR_RESPONSES},
    )


@extend_schema_view(
    list=extend_schema(summary="List campaigns, with deliveries per status"),
    retrieve=extend_schema(summary="A campaign, by slug, with deliveries per status"),
    create=extend_schema(
        summary="Create a draft campaign with its audience and messages",
        request=serializers.CampaignInputSerializer,
        responses={201: serializers.CampaignSerializer, 400: ERROR_RESPONSES[400]},
    ),
    partial_update=extend_schema(
        summary=(
            "Change a campaign: a draft entirely; once scheduled, only its name, "
            "description, priority, frequency cap, costs and attribution window"
        ),
        request=serializers.CampaignChangeInputSerializer,
        responses={200: serializers.CampaignSerializer, **ERROR_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete a draft (a scheduled campaign is cancelled instead)",
        responses={204: None, **ERROR_RESPONSES},
    ),
)
class CampaignViewSet(
    ApiViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Campaigns. Create a draft, schedule it, pause, resume or cancel it; its
    deliveries say who got what on which channel, or why not."""

    queryset = Campaign.objects.none()
    serializer_class = serializers.CampaignSerializer
    filterset_class = filters.CampaignFilter
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    # PATCH only: a PUT would have to restate messages and audience, and after
    # scheduling most of them may not change.
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    read_roles = SEE_ALL
    write_roles = MARKETERS_ONLY

    def scoped_queryset(self):
        # Only what a campaign's representation shows needs the prefetches; the
        # lifecycle steps and the deliveries need the row.
        if self.action in ("list", "retrieve"):
            return campaign_list()
        return Campaign.objects.all()

    def _output(self, campaign: Campaign, code: int = status.HTTP_200_OK) -> Response:
        campaign = campaign_list().get(pk=campaign.pk)
        context = {"counts": delivery_counts(campaign_ids=[campaign.pk])}
        return Response(
            serializers.CampaignSerializer(campaign, context=context).data, status=code
        )

    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        context = {"counts": delivery_counts(campaign_ids=[c.pk for c in page])}
        return self.get_paginated_response(
            serializers.CampaignSerializer(page, many=True, context=context).data
        )

    def retrieve(self, request, slug=None):
        campaign = self.get_object()
        context = {"counts": delivery_counts(campaign_ids=[campaign.pk])}
        return Response(serializers.CampaignSerializer(campaign, context=context).data)

    def create(self, request):
        serializer = serializers.CampaignInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        campaign = campaign_create(created_by=request.user, **serializer.validated_data)
        return self._output(campaign, status.HTTP_201_CREATED)

    def partial_update(self, request, slug=None):
        campaign = self.get_object()
        serializer = serializers.CampaignChangeInputSerializer(
            data=request.data, partial=True
        )
        serializer.is_valid(raise_exception=True)
        campaign = campaign_update(
            campaign=campaign, changed_by=request.user, **serializer.validated_data
        )
        return self._output(campaign)

    def destroy(self, request, slug=None):
        campaign_delete(campaign=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @_lifecycle_schema(
        "Schedule a draft (a triggered campaign starts at once); again is a no-op",
        202,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def schedule(self, request, slug=None):
        campaign = campaign_schedule(campaign=self.get_object(), user=request.user)
        return self._output(campaign, status.HTTP_202_ACCEPTED)

    @_lifecycle_schema("Stop planning and sending until resumed")
    @action(detail=True, methods=["post"], filterset_class=None)
    def pause(self, request, slug=None):
        campaign = campaign_pause(campaign=self.get_object(), user=request.user)
        return self._output(campaign)

    @_lifecycle_schema("Go on from where the campaign was paused")
    @action(detail=True, methods=["post"], filterset_class=None)
    def resume(self, request, slug=None):
        campaign = campaign_resume(campaign=self.get_object(), user=request.user)
        return self._output(campaign)

    @_lifecycle_schema("Stop for good; deliveries not sent yet are skipped")
    @action(detail=True, methods=["post"], filterset_class=None)
    def cancel(self, request, slug=None):
        campaign = campaign_cancel(campaign=self.get_object(), user=request.user)
        return self._output(campaign)

    @extend_schema(
        summary=(
            "The audience a run planned now would have: size, control group, "
            "channels, deferred and skipped with reasons; nothing is written"
        ),
        request=None,
        responses={
            200: serializers.AudiencePreviewSerializer,
            404: OpenApiResponse(description="No such campaign."),
        },
    )
    @action(
        detail=True,
        methods=["post"],
        filterset_class=None,
        write_roles=SEE_ALL,
        throttle_scope="preview",
    )
    def preview(self, request, slug=None):
        preview = audience_preview(campaign=self.get_object())
        return Response(serializers.AudiencePreviewSerializer(asdict(preview)).data)

    @extend_schema(
        summary="The campaign's deliveries: who got what, on which channel, or why not",
        responses={
            200: serializers.DeliverySerializer(many=True),
            404: OpenApiResponse(description="No such campaign."),
        },
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=filters.DeliveryFilter,
        queryset=Delivery.objects.none(),
    )
    def deliveries(self, request, slug=None):
        campaign = self.get_object()
        rows = self.filter_queryset(campaign_delivery_list(campaign=campaign))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(
            serializers.DeliverySerializer(page, many=True).data
        )
