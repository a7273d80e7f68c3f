"""What personas add to the customer resource (crm.hooks): the customer's persona
and the `?persona=` filter."""

import django_filters
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.models import Customer


@extend_schema_field(serializers.CharField(allow_null=True))
class CustomerPersonaField(serializers.Field):
    """The slug of the customer's persona, or None."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, customer: Customer) -> str | None:
        # customer_api_queryset selects the assignment and its persona; a missing
        # one is cached as absent, so neither case queries again.
        try:
            assignment = customer.persona_assignment
        except ObjectDoesNotExist:
            return None
        return assignment.persona.slug


def customer_api_fields() -> dict[str, serializers.Field]:
    return {
        "persona": CustomerPersonaField(
            help_text=_("Slug of the customer's persona, or null.")
        )
    }


def customer_api_queryset(*, queryset: QuerySet[Customer]) -> QuerySet[Customer]:
    return queryset.select_related("persona_assignment__persona")


def customer_api_filters() -> dict[str, django_filters.Filter]:
    return {
        "persona": django_filters.CharFilter(
            field_name="persona_assignment__persona__slug",
            max_length=64,
            help_text=_("Slug of the customer's persona."),
        )
    }
