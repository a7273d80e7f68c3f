from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.models import StaffMember, Store

from .base import ChangedFieldsSaveMixin


@admin.register(Store)
class StoreAdmin(ChangedFieldsSaveMixin, admin.ModelAdmin):
    list_display = ["name", "code", "city", "country", "time_zone"]
    list_filter = ["country"]
    search_fields = ["name", "code", "city"]
    readonly_fields = ["receipt_sequence"]
    fieldsets = [
        (None, {"fields": ["name", "code", "time_zone"]}),
        (
            _("Address"),
            {"fields": ["address", ("postal_code", "city"), "country"]},
        ),
        (_("Contact"), {"fields": ["email", "phone"]}),
        (_("Record"), {"fields": ["receipt_sequence", "created_at"]}),
    ]


@admin.register(StaffMember)
class StaffMemberAdmin(admin.ModelAdmin):
    list_display = ["user", "store"]
    list_select_related = ["user", "store"]
    list_filter = ["store"]
    search_fields = ["user__username", "user__email", "user__last_name", "store__name"]
    autocomplete_fields = ["user", "store"]
