"""django-filter filter sets of the segment resources."""

import django_filters as filters

from crm.api.filters import ApiDateTimeFilter, IdFilter
from crm.models import Customer

from ..models import Segment, SegmentEvent


class SegmentFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Segment.Kind.choices)
    is_active = filters.BooleanFilter()

    class Meta:
        model = Segment
        fields = ["kind", "is_active"]


class MemberFilter(filters.FilterSet):
    entered_after = ApiDateTimeFilter(field_name="entered_at", lookup_expr="gte")
    email = filters.CharFilter(method="filter_email", max_length=254)

    class Meta:
        model = Customer
        fields = ["entered_after", "email"]

    def filter_email(self, queryset, name, value):
        return queryset.by_email(value) if value else queryset


class SegmentEventFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=SegmentEvent.Kind.choices)
    cause = filters.ChoiceFilter(choices=SegmentEvent.Cause.choices)
    customer = IdFilter(field_name="customer_id", min_value=1)
    occurred_after = ApiDateTimeFilter(field_name="occurred_at", lookup_expr="gte")

    class Meta:
        model = SegmentEvent
        fields = ["kind", "cause", "customer"]
