from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from phonenumber_field.phonenumber import PhoneNumber
from phonenumber_field.phonenumber import to_python as phone_parse

from crm import hooks
from crm.models import (
    Consent,
    Contact,
    Customer,
    CustomerCategoryStats,
    CustomerStats,
    Tag,
)
from crm.selectors import (
    CONSENT_LEDGER_ENTRIES,
    RECENT_CONTACTS,
    customer_category_stats,
    customer_consent_ledger,
    customer_current_consents,
    customer_data_export,
    customer_loyalty_cards,
    customer_recent_contacts,
)
from crm.services import (
    consent_record,
    customer_create,
    customer_erase,
    customer_update,
)
from crm.services.customers import CUSTOMER_FIELDS

from ..formats import money
from .base import (
    NoDeleteMixin,
    ObjectSelectRelatedMixin,
    ReadOnlyAdminMixin,
    ServiceFormMixin,
    action_with_form,
    apply_each,
    instance_adopt,
    local_datetime,
)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


def _stats(customer: Customer) -> CustomerStats | None:
    # A customer created outside the services may lack its statistics row.
    return getattr(customer, "stats", None)


# Customers one export action downloads at most (an access request names one).
EXPORT_MAX = 50


class ErasureConfirmForm(forms.Form):
    confirmed = forms.BooleanField(
        label=_("The request came from these customers themselves"),
        help_text=_(
            "Erasing cannot be undone: names, addresses, phone numbers, email "
            "addresses and interests are gone for good. Sales and statistics stay, "
            "anonymous."
        ),
    )


@admin.register(Customer)
class CustomerAdmin(
    ServiceFormMixin, NoDeleteMixin, ObjectSelectRelatedMixin, admin.ModelAdmin
):
    # Fits a laptop screen next to both sidebars: the email goes under the name,
    # the phone is on the customer's page (and the search still finds it).
    list_display = [
        "customer",
        "city",
        "orders",
        "total_spent",
        "last_purchase_day",
    ]
    list_select_related = ["stats"]
    list_filter = [
        "gender",
        "income_band",
        "preferred_channel",
        "source",
        "home_store",
    ]
    search_fields = ["email", "first_name", "last_name", "^postal_code", "phone"]
    search_help_text = _(
        "Part of the email address or name, the start of the postal code, or a "
        "phone number."
    )
    autocomplete_fields = ["home_store", "tags"]
    show_full_result_count = False
    list_per_page = 50
    view_on_site = False
    object_select_related = ("stats", "stats__favourite_category", "home_store")
    actions = ["export", "erase"]
    readonly_fields = [
        "orders",
        "total_spent",
        "avg_order_value",
        "first_purchase",
        "last_purchase",
        "last_contact",
        "orders_by_channel",
        "preferred_purchase_channel",
        "favourite_category",
        "stats_updated_at",
        "created_at",
        "updated_at",
        "erased_at",
    ]
    base_fieldsets = [
        (
            None,
            {
                "fields": [
                    ("first_name", "last_name"),
                    "email",
                    "phone",
                    "birth_date",
                    "gender",
                    "language",
                ]
            },
        ),
        (
            _("Address"),
            {"fields": ["address", ("postal_code", "city"), "region", "country"]},
        ),
        (
            _("Profile"),
            {
                "fields": [
                    "income_band",
                    "occupation",
                    "family_situation",
                    "tags",
                    "preferred_channel",
                    "social_followers",
                    "service_effort",
                ]
            },
        ),
        (_("Origin"), {"fields": ["home_store", "source"]}),
    ]
    change_fieldsets = [
        (
            _("Statistics"),
            {
                "fields": [
                    ("orders", "total_spent", "avg_order_value"),
                    ("first_purchase", "last_purchase", "last_contact"),
                    "orders_by_channel",
                    "preferred_purchase_channel",
                    "favourite_category",
                    "stats_updated_at",
                ]
            },
        ),
        (_("Record"), {"fields": ["created_at", "updated_at", "erased_at"]}),
    ]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # An erased customer's record is shown, never changed (the service refuses).
        if obj is not None and obj.erased_at is not None:
            return False
        return super().has_change_permission(request, obj)

    @admin.action(
        description=_("Download personal data (access request, JSON)"),
        permissions=["view"],
    )
    def export(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        customers = list(queryset[: EXPORT_MAX + 1])
        if len(customers) > EXPORT_MAX:
            # Refused rather than cut short: a partial file would look complete.
            self.message_user(
                request,
                _(
                    "Select at most %(max)d customers to download their personal "
                    "data; an access request names one."
                )
                % {"max": EXPORT_MAX},
                messages.ERROR,
            )
            return None
        exports = [customer_data_export(customer=c) for c in customers]
        response = JsonResponse(
            exports[0] if len(exports) == 1 else exports,
            safe=False,
            json_dumps_params={"indent": 2, "ensure_ascii": False},
        )
        name = (
            f"customer-{exports[0]['customer']['id']}.json"
            if len(exports) == 1
            else "customers.json"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response

    def has_erase_permission(self, request: HttpRequest) -> bool:
        # Erasing is as final as deleting: it takes the permission to delete.
        return request.user.has_perm("crm.delete_customer")

    @admin.action(
        description=_("Erase personal data (right to erasure)"),
        permissions=["erase"],
    )
    def erase(self, request: HttpRequest, queryset: QuerySet):
        def apply(_data: dict[str, Any]) -> None:
            apply_each(
                self,
                request,
                queryset,
                lambda customer: customer_erase(customer=customer, by=request.user),
                done_message=_("Erased the personal data of %(count)d customer(s)."),
            )

        return action_with_form(
            self,
            request,
            queryset,
            form_class=ErasureConfirmForm,
            title=_("Erase personal data"),
            intro=_(
                "The personal data of the customers below is erased, their consents "
                "withdrawn and their loyalty cards blocked; integrations that "
                "subscribe to customer.erased are told to delete their copy."
            ),
            submit_label=_("Erase for good"),
            apply=apply,
        )

    def get_fieldsets(self, request: HttpRequest, obj: Customer | None = None):
        if obj is None:
            return self.base_fieldsets
        return self.base_fieldsets + self.change_fieldsets

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        # Filters of the apps built on the core (segments) come first.
        added = [
            list_filter
            for filters in hooks.customer_admin_list_filters.send(request=request)
            for list_filter in filters
        ]
        return [*added, *self.list_filter]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ):
        results, may_have_duplicates = super().get_search_results(
            request, queryset, search_term
        )
        # Phones are stored as +31612345678; a clerk types 06 12 34 56 78.
        phone = phone_parse(search_term.strip()) if search_term.strip() else None
        if isinstance(phone, PhoneNumber) and phone.is_valid():
            results |= queryset.filter(phone=phone)
        return results, may_have_duplicates

    def save_model(self, request: HttpRequest, obj: Customer, form, change: bool):
        data = form.cleaned_data
        names = form.changed_data if change else data
        fields = {
            name: data[name]
            for name in names
            if name in CUSTOMER_FIELDS and name != "tags"
        }
        tags = None
        if "tags" in form.changed_data or not change:
            # Slugs, not names: the service looks tags up by slugifying what it gets.
            tags = [tag.slug for tag in data.get("tags", [])]
        if change:
            customer_update(customer=obj, tags=tags, **fields)
        else:
            instance_adopt(obj, customer_create(tags=tags, **fields))

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        if obj is not None and obj.pk is not None:
            context.update(self._panels(request, obj))
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def _panels(self, request: HttpRequest, customer: Customer) -> dict[str, Any]:
        """The read-only tables under the form, each for users who may see its rows.

        A panel left out is None in the context, so the template can tell "not
        allowed" from "nothing there".
        """

        def may(action: str, model_name: str) -> bool:
            return request.user.has_perm(f"crm.{action}_{model_name}")

        may_see_consents = may("view", "consent")
        return {
            "currency": settings.LOYALIST_CURRENCY,
            "app_panels": [
                panel
                for panel in hooks.customer_admin_panels.send(
                    request=request, customer=customer
                )
                if panel is not None
            ],
            "current_consents": (
                customer_current_consents(customer=customer)
                if may_see_consents
                else None
            ),
            "consent_ledger": (
                customer_consent_ledger(customer=customer) if may_see_consents else None
            ),
            "consent_ledger_limit": CONSENT_LEDGER_ENTRIES,
            "may_record_consent": may("add", "consent"),
            "loyalty_cards": (
                customer_loyalty_cards(customer=customer)
                if may("view", "loyaltycard")
                else None
            ),
            "category_stats": (
                customer_category_stats(customer=customer)
                if may("view", "customerstats")
                else None
            ),
            "recent_contacts": (
                customer_recent_contacts(customer=customer)
                if may("view", "contact")
                else None
            ),
            "recent_contacts_limit": RECENT_CONTACTS,
        }

    @admin.display(description=_("name"), ordering="last_name")
    def name(self, obj: Customer) -> str:
        return obj.full_name

    @admin.display(description=_("customer"), ordering="last_name")
    def customer(self, obj: Customer) -> str:
        if not obj.email:
            return obj.full_name or _("(no name)")
        return format_html(
            '{}<br><span class="quiet">{}</span>',
            obj.full_name or _("(no name)"),
            obj.email,
        )

    @admin.display(description=_("last purchase"), ordering="stats__last_purchase_at")
    def last_purchase_day(self, obj: Customer) -> str | None:
        stats = _stats(obj)
        if stats is None or stats.last_purchase_at is None:
            return None
        return date_format(timezone.localdate(stats.last_purchase_at))

    @admin.display(description=_("orders"), ordering="stats__orders")
    def orders(self, obj: Customer) -> int | None:
        stats = _stats(obj)
        return stats.orders if stats else None

    @admin.display(description=_("total spent"), ordering="stats__total_spent")
    def total_spent(self, obj: Customer) -> str | None:
        stats = _stats(obj)
        return money(stats.total_spent) if stats else None

    @admin.display(description=_("average order value"))
    def avg_order_value(self, obj: Customer) -> str | None:
        stats = _stats(obj)
        return money(stats.avg_order_value) if stats else None

    @admin.display(description=_("first purchase"))
    def first_purchase(self, obj: Customer):
        stats = _stats(obj)
        return local_datetime(stats.first_purchase_at) if stats else None

    @admin.display(description=_("last purchase"), ordering="stats__last_purchase_at")
    def last_purchase(self, obj: Customer):
        stats = _stats(obj)
        return local_datetime(stats.last_purchase_at) if stats else None

    @admin.display(description=_("last contact"))
    def last_contact(self, obj: Customer):
        stats = _stats(obj)
        return local_datetime(stats.last_contact_at) if stats else None

    @admin.display(description=_("orders by channel"))
    def orders_by_channel(self, obj: Customer) -> str | None:
        stats = _stats(obj)
        if stats is None:
            return None
        return _("%(store)d in store, %(online)d online, %(phone)d by phone") % {
            "store": stats.orders_in_store,
            "online": stats.orders_online,
            "phone": stats.orders_by_phone,
        }

    @admin.display(description=_("preferred purchase channel"))
    def preferred_purchase_channel(self, obj: Customer) -> str | None:
        stats = _stats(obj)
        return stats.get_preferred_purchase_channel_display() if stats else None

    @admin.display(description=_("favourite category"))
    def favourite_category(self, obj: Customer):
        stats = _stats(obj)
        return stats.favourite_category if stats else None

    @admin.display(description=_("statistics updated at"))
    def stats_updated_at(self, obj: Customer):
        stats = _stats(obj)
        return local_datetime(stats.updated_at) if stats else None


@admin.register(Consent)
class ConsentAdmin(ServiceFormMixin, ObjectSelectRelatedMixin, admin.ModelAdmin):
    """The consent ledger: entries are appended through consent_record, never edited."""

    list_display = [
        "recorded_at",
        "customer",
        "channel",
        "status",
        "source",
        "recorded_by",
    ]
    list_select_related = ["customer", "recorded_by"]
    list_filter = [
        "channel",
        "status",
        "source",
        ("recorded_at", admin.DateFieldListFilter),
    ]
    search_fields = ["=customer__email", "customer__last_name"]
    search_help_text = _("The customer's exact email address, or part of the name.")
    autocomplete_fields = ["customer"]
    show_full_result_count = False
    list_per_page = 100
    # Newest rows first by primary key: no index orders the whole ledger by time.
    ordering = ["-id"]
    object_select_related = ("customer", "recorded_by")
    add_fields = ["customer", "channel", "status", "wording"]

    def get_fields(self, request: HttpRequest, obj: Consent | None = None):
        if obj is None:
            return self.add_fields
        return [*self.add_fields, "source", "recorded_at", "recorded_by"]

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Consent, form, change: bool):
        data = form.cleaned_data
        consent = consent_record(
            customer=data["customer"],
            channel=data["channel"],
            granted=data["status"] == Consent.Status.GRANTED,
            source=Consent.Source.ADMIN,
            wording=data["wording"],
            recorded_by=request.user,
        )
        instance_adopt(obj, consent)

    def response_add(self, request: HttpRequest, obj: Consent, post_url_continue=None):
        response = super().response_add(request, obj, post_url_continue)
        if any(key in request.POST for key in ("_addanother", "_continue", "_popup")):
            return response
        # Back to the customer, whose page shows the consent now in force.
        return HttpResponseRedirect(
            reverse("admin:crm_customer_change", args=[obj.customer_id])
        )


@admin.register(Contact)
class ContactAdmin(ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "customer", "kind", "channel", "store", "receipt"]
    list_select_related = ["customer", "store", "receipt"]
    list_filter = [
        "kind",
        "channel",
        ("occurred_at", admin.DateFieldListFilter),
        "store",
    ]
    search_fields = ["=customer__email", "=receipt__number"]
    search_help_text = _("The customer's exact email address or a receipt number.")
    show_full_result_count = False
    list_per_page = 100
    # Newest rows first by primary key: no index orders all contacts by time.
    ordering = ["-id"]
    object_select_related = ("customer", "store", "receipt")
    fields = [
        "customer",
        "kind",
        "channel",
        "occurred_at",
        "store",
        "receipt",
        "payload",
        "created_at",
    ]


@admin.register(CustomerStats)
class CustomerStatsAdmin(
    ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin
):
    list_display = [
        "customer",
        "orders",
        "total_spent_display",
        "avg_order_value_display",
        "last_purchase_at",
        "last_contact_at",
        "preferred_purchase_channel",
        "favourite_category",
    ]
    list_select_related = ["customer", "favourite_category"]
    list_filter = ["preferred_purchase_channel"]
    search_fields = ["=customer__email"]
    search_help_text = _("The customer's exact email address.")
    show_full_result_count = False
    list_per_page = 100
    object_select_related = ("customer", "favourite_category")

    @admin.display(description=_("total spent"), ordering="total_spent")
    def total_spent_display(self, obj: CustomerStats) -> str:
        return money(obj.total_spent)

    @admin.display(description=_("average order value"), ordering="avg_order_value")
    def avg_order_value_display(self, obj: CustomerStats) -> str:
        return money(obj.avg_order_value)


@admin.register(CustomerCategoryStats)
class CustomerCategoryStatsAdmin(
    ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin
):
    list_display = [
        "customer",
        "category",
        "orders",
        "quantity",
        "spent_display",
        "last_purchase_at",
    ]
    list_select_related = ["customer", "category"]
    list_filter = ["category"]
    search_fields = ["=customer__email"]
    search_help_text = _("The customer's exact email address.")
    show_full_result_count = False
    list_per_page = 100
    object_select_related = ("customer", "category")

    @admin.display(description=_("spent"), ordering="spent")
    def spent_display(self, obj: CustomerCategoryStats) -> str:
        return money(obj.spent)
