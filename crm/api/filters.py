"""django-filter filter sets of the CRM resources (documented in the schema)."""

import django_filters as filters
from django import forms
from django.db.models import Exists, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _
from phonenumber_field.phonenumber import PhoneNumber
from phonenumbers import NumberParseException

from crm.models import (
    Category,
    Contact,
    Customer,
    LoyaltyCard,
    LoyaltyTransaction,
    Product,
    Receipt,
    SalesChannel,
    Store,
)


class IdFilter(filters.NumberFilter):
    """A row id: a whole number, where NumberFilter would take 1.5."""

    field_class = forms.IntegerField


class StoreFilter(filters.FilterSet):
    city = filters.CharFilter(lookup_expr="iexact", max_length=100)
    country = filters.CharFilter(lookup_expr="iexact", max_length=2)

    class Meta:
        model = Store
        fields = ["city", "country"]


class CategoryFilter(filters.FilterSet):
    parent = filters.CharFilter(
        field_name="parent__slug", max_length=100, help_text=_("Parent slug.")
    )

    class Meta:
        model = Category
        fields = ["parent"]


class ProductFilter(filters.FilterSet):
    category = filters.CharFilter(
        field_name="category__slug", max_length=100, help_text=_("Category slug.")
    )
    barcode = filters.CharFilter(max_length=32)
    is_active = filters.BooleanFilter()

    class Meta:
        model = Product
        fields = ["category", "barcode", "is_active"]


class CustomerFilter(filters.FilterSet):
    email = filters.CharFilter(
        method="filter_email", max_length=254, help_text=_("Exact, any case.")
    )
    phone = filters.CharFilter(
        method="filter_phone",
        max_length=32,
        help_text=_("Any notation of the number; compared in E.164."),
    )
    city = filters.CharFilter(lookup_expr="iexact", max_length=100)
    postal_code = filters.CharFilter(lookup_expr="iexact", max_length=16)
    home_store = filters.CharFilter(
        field_name="home_store__code", max_length=32, help_text=_("Store code.")
    )
    segment = filters.CharFilter(
        method="filter_segment",
        max_length=64,
        help_text=_("Slug of a segment the customer is in now."),
    )
    tag = filters.CharFilter(field_name="tags__slug", max_length=64, distinct=True)
    created_after = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte"
    )
    created_before = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt"
    )
    updated_after = filters.IsoDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text=_("Changed at or after this time: for incremental syncs."),
    )

    class Meta:
        model = Customer
        fields = ["email", "phone", "city", "postal_code", "home_store", "segment"]

    def filter_email(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.by_email(value) if value else queryset

    def filter_phone(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if not value:
            return queryset
        try:
            number = PhoneNumber.from_string(value)
        except NumberParseException:
            return queryset.none()
        if not number.is_valid():
            return queryset.none()
        return queryset.filter(phone=number.as_e164)

    def filter_segment(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        from segments.models import SegmentMembership

        if not value:
            return queryset
        return queryset.filter(
            Exists(
                SegmentMembership.objects.filter(
                    customer_id=OuterRef("pk"), segment__slug=value
                )
            )
        )


class ReceiptFilter(filters.FilterSet):
    store = filters.CharFilter(field_name="store__code", max_length=32)
    customer = IdFilter(field_name="customer_id", min_value=1)
    number = filters.CharFilter(max_length=64)
    status = filters.ChoiceFilter(choices=Receipt.Status.choices)
    channel = filters.ChoiceFilter(choices=SalesChannel.choices)
    purchased_after = filters.IsoDateTimeFilter(
        field_name="purchased_at", lookup_expr="gte"
    )
    purchased_before = filters.IsoDateTimeFilter(
        field_name="purchased_at", lookup_expr="lt"
    )

    class Meta:
        model = Receipt
        fields = ["store", "customer", "number", "status", "channel"]


class ContactFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id", min_value=1)
    kind = filters.MultipleChoiceFilter(choices=Contact.Kind.choices)
    channel = filters.ChoiceFilter(choices=Contact.ContactChannel.choices)
    store = filters.CharFilter(field_name="store__code", max_length=32)
    occurred_after = filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="gte"
    )
    occurred_before = filters.IsoDateTimeFilter(
        field_name="occurred_at", lookup_expr="lt"
    )

    class Meta:
        model = Contact
        fields = ["customer", "kind", "channel", "store"]


class CustomerContactFilter(ContactFilter):
    class Meta(ContactFilter.Meta):
        fields = ["kind", "channel", "store"]


class LoyaltyCardFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id", min_value=1)
    status = filters.ChoiceFilter(choices=LoyaltyCard.Status.choices)
    tier = filters.ChoiceFilter(choices=LoyaltyCard.Tier.choices)

    class Meta:
        model = LoyaltyCard
        fields = ["customer", "status", "tier"]


class LoyaltyTransactionFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=LoyaltyTransaction.Kind.choices)
    created_after = filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte"
    )

    class Meta:
        model = LoyaltyTransaction
        fields = ["kind"]
