"""Rows only the segment engine writes: history and RFM thresholds."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.admin.base import ObjectSelectRelatedMixin, ReadOnlyAdminMixin

from ..models import RfmThresholds, SegmentEvent


@admin.register(SegmentEvent)
class SegmentEventAdmin(ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "segment", "customer", "kind", "cause", "contact"]
    list_select_related = ["segment", "customer", "contact"]
    list_filter = ["kind", "cause", "segment"]
    search_fields = ["=customer__email"]
    search_help_text = _("The customer's exact email address.")
    show_full_result_count = False
    list_per_page = 100
    ordering = ["-id"]
    object_select_related = ("customer", "segment", "contact")
    fields = ["segment", "customer", "kind", "cause", "occurred_at", "contact"]


@admin.register(RfmThresholds)
class RfmThresholdsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["computed_at", "customers", "recency", "frequency", "monetary"]
    ordering = ["-computed_at", "-id"]
    fields = ["computed_at", "customers", "recency", "frequency", "monetary"]
