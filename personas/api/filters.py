"""django-filter filter sets of the persona resources."""

import django_filters as filters

from crm.api.filters import ApiDateTimeFilter
from crm.models import Customer

from ..models import Persona


class PersonaFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Persona.Status.choices)

    class Meta:
        model = Persona
        fields = ["status"]


class PersonaMemberFilter(filters.FilterSet):
    assigned_after = ApiDateTimeFilter(field_name="assigned_at", lookup_expr="gte")
    email = filters.CharFilter(method="filter_email", max_length=254)

    class Meta:
        model = Customer
        fields = ["assigned_after", "email"]

    def filter_email(self, queryset, name, value):
        return queryset.by_email(value) if value else queryset
