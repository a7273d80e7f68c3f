"""What the API's member export endpoints share (segments' and personas')."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.renderers import BaseRenderer, JSONRenderer

from ..exports import EXPORT_CHANNELS, MEMBER_EXPORT_PERMISSION


class CanExportMembers(BasePermission):
    """The admin's permission: the user may add a member export to the log."""

    message = "Your role may not export members."

    def has_permission(self, request, view) -> bool:
        return request.user.has_perm(MEMBER_EXPORT_PERMISSION)


class CsvRenderer(BaseRenderer):
    """Lets a client ask for `Accept: text/csv`; the CSV itself is streamed by the
    view, so only errors pass through here (as their JSON)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data: Any, accepted_media_type=None, renderer_context=None):
        return JSONRenderer().render(data)


class ExportChannelsSerializer(serializers.Serializer):
    channel = serializers.ListField(
        child=serializers.ChoiceField(choices=EXPORT_CHANNELS),
        required=False,
        allow_empty=True,
    )


def export_channels(query_params) -> list[str]:
    """The `channel` parameters given, or every channel the export knows."""
    serializer = ExportChannelsSerializer(
        data={"channel": query_params.getlist("channel")}
    )
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data.get("channel") or list(EXPORT_CHANNELS)


MEMBER_EXPORT_ACTION: dict[str, Any] = {
    "detail": True,
    "methods": ["get"],
    "url_path": "members/export",
    "filterset_class": None,
    "pagination_class": None,
    "renderer_classes": [JSONRenderer, CsvRenderer],
    "permission_classes": [CanExportMembers],
}


def member_export_schema(what: str) -> dict[str, Any]:
    """`@extend_schema` arguments for the export of `what`'s members."""
    return {
        "summary": f"The {what}'s members as a CSV file (logged)",
        "description": (
            "Customer id, name, city, orders, total spent and last purchase for "
            "every member, streamed in customer id order. Email, phone and postal "
            "address are filled only where the customer's current consent on "
            "that channel (email, sms, post) is a grant; otherwise they are empty. "
            "Every export is logged with its user and row count."
        ),
        "parameters": [
            OpenApiParameter(
                "channel",
                OpenApiTypes.STR,
                enum=list(EXPORT_CHANNELS),
                many=True,
                description="Contact columns to include (repeat); default all.",
            )
        ],
        "responses": {
            (200, "text/csv"): OpenApiResponse(
                response=OpenApiTypes.STR, description="The CSV file."
            ),
            400: OpenApiResponse(description="An unknown channel."),
            403: OpenApiResponse(description="The role may not export members."),
            404: OpenApiResponse(description="No such object."),
        },
    }
