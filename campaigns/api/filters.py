"""django-filter filter sets of the campaign resources."""

import django_filters as filters

from crm.api.filters import IdFilter
from crm.models import Channel

from ..models import Campaign, Delivery


class CampaignFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Campaign.Kind.choices)
    status = filters.ChoiceFilter(choices=Campaign.Status.choices)

    class Meta:
        model = Campaign
        fields = ["kind", "status"]


class DeliveryFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id", min_value=1)
    status = filters.ChoiceFilter(choices=Delivery.Status.choices)
    channel = filters.ChoiceFilter(choices=Channel.choices)
    message = filters.CharFilter(field_name="message__name", max_length=80)

    class Meta:
        model = Delivery
        fields = ["customer", "status", "channel", "message"]
