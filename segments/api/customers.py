"""What the segment engine adds to the customer resource (crm.hooks): the
customer's segments, the `?segment=` filter and `/customers/{id}/explain/`."""

import django_filters
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import generics, serializers
from rest_framework.response import Response

from crm.api.permissions import SEE_ALL
from crm.api.selectors import customer_scope
from crm.api.views import ERROR_RESPONSES, ApiViewSetMixin
from crm.errors import field_error
from crm.models import Customer

from ..models import Segment
from ..selectors import active_segment_slugs, segment_explain, segment_is_member
from .serializers import explanation_json


@extend_schema_field(serializers.ListField(child=serializers.SlugField()))
class CustomerSegmentsField(serializers.Field):
    """The slugs of the active segments the customer is in, sorted."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, customer: Customer) -> list[str]:
        # customer_api_queryset selects the state; a missing one is cached as
        # absent, so neither case queries again.
        try:
            ids = customer.segment_state.segment_ids
        except ObjectDoesNotExist:
            return []
        # One query for the whole response, lists included: the root's context.
        slugs = self.context.get("segment_slugs")
        if slugs is None:
            slugs = self.context["segment_slugs"] = active_segment_slugs()
        return sorted(slugs[pk] for pk in ids if pk in slugs)


def customer_api_fields() -> dict[str, serializers.Field]:
    return {
        "segments": CustomerSegmentsField(
            help_text=gettext_lazy("Slugs of the segments the customer is in now.")
        )
    }


def customer_api_queryset(*, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
    return queryset.select_related("segment_state")


class SegmentMemberFilter(django_filters.CharFilter):
    """Members of the active segment with this slug (none for an unknown one)."""

    def filter(self, qs: QuerySet[Customer], value: str) -> QuerySet[Customer]:
        if not value:
            return qs
        segment = Segment.objects.filter(slug=value, is_active=True).first()
        if segment is None:
            return qs.none()
        return qs.filter(segment_state__segment_ids__includes=segment.pk)


def customer_api_filters() -> dict[str, django_filters.Filter]:
    return {
        "segment": SegmentMemberFilter(
            max_length=64,
            help_text=gettext_lazy("Slug of a segment the customer is in now."),
        )
    }


class CustomerExplainView(ApiViewSetMixin, generics.GenericAPIView):
    """Why a customer is (not) in a segment, under the customer's URL."""

    queryset = Customer.objects.none()
    read_roles = SEE_ALL

    def scoped_queryset(self):
        return customer_scope(user=self.request.user)

    @extend_schema(
        summary="Why a customer is (not) in a segment",
        parameters=[
            OpenApiParameter(
                "segment", OpenApiTypes.STR, required=True, description="Segment slug."
            )
        ],
        responses={
            200: inline_serializer(
                "SegmentExplanation",
                fields={
                    "customer": serializers.IntegerField(),
                    "segment": serializers.SlugField(),
                    "member": serializers.BooleanField(
                        help_text="Whether the stored membership says so."
                    ),
                    "explanation": serializers.JSONField(
                        help_text=(
                            "The rule as a tree. Every node has `kind` (all, any, "
                            "not, segment or leaf), `result` (whether it holds for "
                            "the customer now) and `children`; a leaf also has "
                            "`text` (the condition as typed) and `says` (the "
                            "customer against it in words: days ago, amounts with "
                            "the currency, R, F and M scores with what each means)."
                        )
                    ),
                },
            ),
            **ERROR_RESPONSES,
        },
    )
    def get(self, request, pk=None):
        customer = self.get_object()
        slug = request.query_params.get("segment", "")
        if not slug:
            raise field_error("segment", _("Name the segment (slug)."), "required")
        segment = get_object_or_404(Segment, slug=slug)
        return Response(
            {
                "customer": customer.pk,
                "segment": segment.slug,
                "member": segment_is_member(segment=segment, customer=customer),
                "explanation": explanation_json(
                    segment_explain(customer=customer, segment=segment)
                ),
            }
        )
