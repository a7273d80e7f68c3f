"""Personas over the REST API: CRUD, their customers and their figures."""

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
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

from ..models import Persona
from ..selectors import persona_list, persona_member_list, persona_stats
from . import filters, serializers
from .services import api_persona_create, api_persona_delete, api_persona_update


@extend_schema_view(
    list=extend_schema(summary="List personas"),
    retrieve=extend_schema(summary="A persona, by slug"),
    create=extend_schema(
        summary="Create a persona (an active one is matched in the background)",
        request=serializers.PersonaInputSerializer,
        responses={201: serializers.PersonaSerializer, 400: ERROR_RESPONSES[400]},
    ),
    update=extend_schema(
        summary="Change a persona; a changed rule, priority or status rematches",
        request=serializers.PersonaInputSerializer,
        responses={200: serializers.PersonaSerializer, **ERROR_RESPONSES},
    ),
    partial_update=extend_schema(
        summary="Change some of a persona's fields",
        request=serializers.PersonaInputSerializer,
        responses={200: serializers.PersonaSerializer, **ERROR_RESPONSES},
    ),
    destroy=extend_schema(
        summary="Delete a persona; its customers move to their next match",
        responses={
            204: OpenApiResponse(description="Deleted."),
            404: ERROR_RESPONSES[404],
        },
    ),
)
class PersonaViewSet(
    ApiViewSetMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Buyer personas. Each customer has at most one: the matching active persona
    with the largest priority. Retire one with `status: retired`."""

    queryset = Persona.objects.none()
    serializer_class = serializers.PersonaSerializer
    filterset_class = filters.PersonaFilter
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"
    read_roles = SEE_ALL
    write_roles = MARKETERS_ONLY

    def scoped_queryset(self):
        if self.action in ("list", "retrieve"):
            return persona_list()
        # Members, figures and writes need the persona, not its assigned count.
        return Persona.objects.select_related("figures")

    def _output(self, persona: Persona, status_code: int) -> Response:
        persona = persona_list().get(pk=persona.pk)
        return Response(serializers.PersonaSerializer(persona).data, status=status_code)

    def create(self, request):
        serializer = serializers.PersonaInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            persona = api_persona_create(data=serializer.validated_data)
            return self._output(persona, status.HTTP_201_CREATED)

    def update(self, request, slug=None, partial=False):
        persona = self.get_object()
        serializer = serializers.PersonaInputSerializer(
            persona, data=request.data, partial=partial
        )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            persona = api_persona_update(
                persona=persona, data=serializer.validated_data
            )
            return self._output(persona, status.HTTP_200_OK)

    def partial_update(self, request, slug=None):
        return self.update(request, slug=slug, partial=True)

    def destroy(self, request, slug=None):
        persona = self.get_object()
        api_persona_delete(persona=persona)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="The persona's customers, latest assignments first",
        responses={200: serializers.PersonaMemberSerializer(many=True)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=filters.PersonaMemberFilter,
        ordering=("-assigned_at", "-id"),
        queryset=Customer.objects.none(),
    )
    def members(self, request, slug=None):
        persona = self.get_object()
        members = self.filter_queryset(persona_member_list(persona=persona))
        page = self.paginate_queryset(members)
        return self.get_paginated_response(
            serializers.PersonaMemberSerializer(page, many=True).data
        )

    @extend_schema(**member_export_schema("persona"))
    @action(**MEMBER_EXPORT_ACTION)
    def members_export(self, request, slug=None):
        persona = self.get_object()
        return member_export_response(
            user=request.user,
            exported=persona,
            members=persona_member_list(persona=persona),
            channels=export_channels(request.query_params),
        )

    @extend_schema(
        summary="The real figures of the persona's customers",
        responses={
            200: serializers.PersonaStatsSerializer,
            404: ERROR_RESPONSES[404],
        },
    )
    @action(detail=True, methods=["get"], filterset_class=None)
    def stats(self, request, slug=None):
        persona = self.get_object()
        return Response(
            serializers.PersonaStatsSerializer(persona_stats(persona=persona)).data
        )
