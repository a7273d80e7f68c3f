"""django-filter filter sets of the CRM resources (documented in the schema)."""

import functools
from datetime import timedelta

import django_filters as filters
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from phonenumber_field.phonenumber import PhoneNumber
from phonenumbers import NumberParseException

from crm import hooks
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

# PostgreSQL stores UTC offsets up to 15:59 either way; Python allows up to 23:59.
MAX_UTC_OFFSET = timedelta(hours=15, minutes=59)


class ApiDateTimeField(IsoDateTimeField):
    """An ISO-8601 time whose UTC offset the database can take."""

    def to_python(self, value):
        value = super().to_python(value)
        offset = value.utcoffset() if value is not None else None
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise forms.ValidationError(
                _("Give a UTC offset between -15:59 and +15:59."), code="invalid"
            )
        return value


class ApiDateTimeFilter(filters.IsoDateTimeFilter):
    """A time filter that refuses what the database would (never a 500)."""

    field_class = ApiDateTimeField


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
    tag = filters.CharFilter(field_name="tags__slug", max_length=64, distinct=True)
    created_after = ApiDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = ApiDateTimeFilter(field_name="created_at", lookup_expr="lt")
    updated_after = ApiDateTimeFilter(
        field_name="updated_at",
        lookup_expr="gte",
        help_text=_("Changed at or after this time: for incremental syncs."),
    )

    class Meta:
        model = Customer
        fields = [
            "email",
            "phone",
            "city",
            "postal_code",
            "home_store",
        ]

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


def customer_filter_class() -> type[CustomerFilter]:
    """CustomerFilter with the filters the apps built on crm add (hook)."""
    return _customer_filter_class(hooks.customer_api_filters.receivers)


@functools.cache
def _customer_filter_class(receivers: tuple) -> type[CustomerFilter]:
    # One class per set of receivers: registered once, in the apps' ready().
    contributed = {}
    for receiver in receivers:
        contributed.update(receiver())
    return type("CustomerFilter", (CustomerFilter,), contributed)


class ReceiptFilter(filters.FilterSet):
    store = filters.CharFilter(field_name="store__code", max_length=32)
    customer = IdFilter(field_name="customer_id", min_value=1)
    number = filters.CharFilter(max_length=64)
    status = filters.ChoiceFilter(choices=Receipt.Status.choices)
    channel = filters.ChoiceFilter(choices=SalesChannel.choices)
    purchased_after = ApiDateTimeFilter(field_name="purchased_at", lookup_expr="gte")
    purchased_before = ApiDateTimeFilter(field_name="purchased_at", lookup_expr="lt")

    class Meta:
        model = Receipt
        fields = ["store", "customer", "number", "status", "channel"]


class ContactFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id", min_value=1)
    kind = filters.MultipleChoiceFilter(choices=Contact.Kind.choices)
    channel = filters.ChoiceFilter(choices=Contact.ContactChannel.choices)
    store = filters.CharFilter(field_name="store__code", max_length=32)
    occurred_after = ApiDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    occurred_before = ApiDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

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
    created_after = ApiDateTimeFilter(field_name="created_at", lookup_expr="gte")

    class Meta:
        model = LoyaltyTransaction
        fields = ["kind"]
