"""Segments over the REST API: CRUD, preview, members, history, recompute."""

from django.db import transaction
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.api.exports import (
    MEMBER_EXPORT_ACTION,
    export_channels,
    member_export_schema,
)
from crm.api.permissions import MARKETERS_ONLY, SEE_ALL
from crm.api.views import ERROR_RESPONSES, ApiViewSetMixin
from crm.exports import member_export_response
from crm.models import Customer

from ..models import Segment, SegmentEvent
from ..selectors import segment_member_list, segment_preview
from ..services import recompute_later, rfm_thresholds_compute, segment_delete
from ..services.segments import rules_from_input
from . import filters, serializers
from .services import api_segment_create, api_segment_update


@extend_schema_view(
    list=extend_schema(summary="List segments"),
    retrieve=extend_schema(summary="A segment, by slug"),
    create=extend_schema(
        summary="Create a segment (its members are computed in the background)",
        request=serializers.SegmentInputSerializer,
        responses={201: serializers.SegmentSerializer, 400: ERROR_RESPONSES[400]},
    ),
    update=extend_schema(
        summary="Change a segment; a changed rule recomputes its members",
        request=serializers.SegmentInputSerializer,
        responses={200: serializers.SegmentSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change some of a segment's fields",
        request=serializers.SegmentInputSerializer,
        responses={200: serializers.SegmentSerializer, **ERROR_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete a segment and its history (refused while a rule uses it)",
        responses={204: None, **ERROR_RESPONSES},
    ),
)
class SegmentViewSet(
    ApiViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Segments. Deactivate one with `is_active: false` (its members leave it, its
    history stays) or delete it with its history."""

    queryset = Segment.objects.none()
    serializer_class = serializers.SegmentSerializer
    filterset_class = filters.SegmentFilter
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    read_roles = SEE_ALL
    write_roles = MARKETERS_ONLY

    def scoped_queryset(self):
        return Segment.objects.all()

    def create(self, request):
        serializer = serializers.SegmentInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            segment = api_segment_create(data=serializer.validated_data)
        return Response(
            serializers.SegmentSerializer(segment).data, status=status.HTTP_201_CREATED
        )

    def update(self, request, slug=None, partial=False):
        segment = self.get_object()
        serializer = serializers.SegmentInputSerializer(
            data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            segment = api_segment_update(
                segment=segment, data=serializer.validated_data
            )
        return Response(serializers.SegmentSerializer(segment).data)

    def partial_update(self, request, slug=None):
        return self.update(request, slug=slug, partial=True)

    def destroy(self, request, slug=None):
        segment_delete(segment=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Count and sample the customers a rule matches, without saving",
        request=serializers.SegmentPreviewInputSerializer,
        responses={
            200: serializers.SegmentPreviewSerializer,
            400: ERROR_RESPONSES[400],
        },
    )
    @action(
        detail=False,
        methods=["post"],
        filterset_class=None,
        write_roles=SEE_ALL,
        throttle_scope="preview",
    )
    def preview(self, request):
        serializer = serializers.SegmentPreviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        rules = rules_from_input(rules=data.get("rules"), query=data.get("query"))
        count, sample = segment_preview(rules=rules, limit=data["limit"])
        segment = Segment(rules=rules)
        return Response(
            serializers.SegmentPreviewSerializer(
                {
                    "count": count,
                    "rules": rules,
                    "query": segment.query,
                    "sample": sample,
                }
            ).data
        )

    @extend_schema(
        summary="The segment's current members, latest entries first",
        responses={200: serializers.MemberSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=filters.MemberFilter,
        ordering=("-entered_at", "-id"),
        queryset=Customer.objects.none(),
    )
    def members(self, request, slug=None):
        segment = self.get_object()
        members = self.filter_queryset(segment_member_list(segment=segment))
        page = self.paginate_queryset(members)
        return self.get_paginated_response(
            serializers.MemberSerializer(page, many=True).data
        )

    @extend_schema(**member_export_schema("segment"))
    @action(**MEMBER_EXPORT_ACTION)
    def members_export(self, request, slug=None):
        segment = self.get_object()
        return member_export_response(
            user=request.user,
            exported=segment,
            members=segment_member_list(segment=segment),
            channels=export_channels(request.query_params),
        )

    @extend_schema(
        summary="Entries into and exits from the segment, newest first",
        responses={200: serializers.SegmentEventSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=filters.SegmentEventFilter,
        queryset=SegmentEvent.objects.none(),
    )
    def history(self, request, slug=None):
        segment = self.get_object()
        events = self.filter_queryset(segment.events.all())
        page = self.paginate_queryset(events)
        return self.get_paginated_response(
            serializers.SegmentEventSerializer(page, many=True).data
        )

    @extend_schema(
        summary=(
            "Recompute the RFM thresholds, then the members of every segment in "
            "the background"
        ),
        request=None,
        responses={
            202: serializers.RecomputeSerializer,
            404: OpenApiResponse(description="No such segment."),
        },
    )
    @action(
        detail=True, methods=["post"], filterset_class=None, throttle_scope="recompute"
    )
    def recompute(self, request, slug=None):
        segment = self.get_object()
        # Today's RFM thresholds first: a recompute right after an import must not
        # score the new history against none (or last night's).
        rfm_thresholds_compute()
        recompute_later()
        return Response(
            {"segment": segment.slug, "status": "queued"},
            status=status.HTTP_202_ACCEPTED,
        )
