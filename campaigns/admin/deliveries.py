"""Rows only the engine writes: runs, deliveries and the change log, read-only."""

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from crm.admin.base import ObjectSelectRelatedMixin, ReadOnlyAdminMixin

from ..models import CampaignChange, CampaignRun, Delivery, Message
from .display import change_summary


class CampaignPartFilter(admin.SimpleListFilter):
    """A campaign's runs or messages: only the chosen campaign's, when one is.

    Django's related filter would list every run of every campaign, each label
    loading its campaign.
    """

    model: type[CampaignRun] | type[Message]

    def lookups(self, request, model_admin):
        rows = self.model.objects.select_related("campaign").order_by(
            "campaign__name", "-id"
        )
        campaign_id = request.GET.get("campaign__id__exact", "")
        if campaign_id.isdigit():
            rows = rows.filter(campaign_id=int(campaign_id))
        return [(row.pk, self.label(row)) for row in rows[:200]]

    def label(self, row) -> str:
        raise NotImplementedError

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        if not self.value().isdigit():
            return queryset.none()
        return queryset.filter(**{f"{self.parameter_name}_id": int(self.value())})


class RunFilter(CampaignPartFilter):
    title = _("run")
    parameter_name = "run"
    model = CampaignRun

    def label(self, row: CampaignRun) -> str:
        return f"{row.campaign.name}: {row.key}"


class MessageFilter(CampaignPartFilter):
    title = _("message")
    parameter_name = "message"
    model = Message

    def label(self, row: Message) -> str:
        return f"{row.campaign.name}: {row}"


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin):
    """One row per recipient per run: the channel and message chosen, and why."""

    list_display = [
        "id",
        "campaign",
        "run_key",
        "customer_link",
        "status",
        "channel",
        "message_name",
        "reason",
        "planned_at",
        "sent_at",
    ]
    list_display_links = ["id"]
    list_select_related = ["campaign", "run", "customer", "message"]
    list_filter = ["status", "channel", "campaign", RunFilter, MessageFilter]
    search_fields = ["=customer__email", "=customer__id"]
    search_help_text = _("The customer's exact email address or number.")
    # Counting every delivery of every campaign for "of N" would scan the table.
    show_full_result_count = False
    list_per_page = 100
    ordering = ["-id"]
    object_select_related = ("campaign", "run", "customer", "message")
    fields = [
        "campaign",
        "run",
        "customer_link",
        "status",
        "channel",
        "message",
        "reason",
        "planned_at",
        "sent_at",
        "attempts",
        "provider_message_id",
        "error",
    ]
    readonly_fields = ["customer_link"]

    @admin.display(description=_("run"), ordering="run__key")
    def run_key(self, obj: Delivery) -> str:
        return obj.run.key

    @admin.display(description=_("customer"), ordering="customer")
    def customer_link(self, obj: Delivery) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:crm_customer_change", args=[obj.customer_id]),
            obj.customer,
        )

    @admin.display(description=_("message"), ordering="message__name")
    def message_name(self, obj: Delivery) -> str:
        return obj.message.name if obj.message is not None else "-"


@admin.register(CampaignRun)
class CampaignRunAdmin(ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin):
    list_display = [
        "campaign",
        "key",
        "status",
        "due_at",
        "planned_at",
        "finished_at",
        "deliveries_link",
    ]
    list_select_related = ["campaign"]
    list_filter = ["status", "campaign"]
    search_fields = ["campaign__name", "key"]
    list_per_page = 100
    object_select_related = ("campaign",)
    fields = [
        "campaign",
        "key",
        "status",
        "due_at",
        "planned_at",
        "finished_at",
        "deliveries_link",
    ]
    readonly_fields = ["deliveries_link"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[CampaignRun]:
        return (
            super().get_queryset(request).annotate(delivery_count=Count("deliveries"))
        )

    @admin.display(description=_("deliveries"), ordering="delivery_count")
    def deliveries_link(self, obj: CampaignRun) -> str:
        return format_html(
            '<a href="{}?run={}">{}</a>',
            reverse("admin:campaigns_delivery_changelist"),
            obj.pk,
            obj.delivery_count,
        )


@admin.register(CampaignChange)
class CampaignChangeAdmin(
    ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin
):
    list_display = [
        "changed_at",
        "campaign",
        "action",
        "changed_by_name",
        "details_display",
    ]
    list_select_related = ["campaign", "changed_by"]
    list_filter = ["action", "campaign"]
    list_per_page = 100
    object_select_related = ("campaign", "changed_by")
    fields = [
        "campaign",
        "action",
        "changed_by_name",
        "changed_at",
        "details_display",
    ]
    readonly_fields = ["changed_by_name", "details_display"]

    @admin.display(description=_("details"))
    def details_display(self, obj: CampaignChange) -> str:
        return format_html_join(
            mark_safe("<br>"), "{}", ((line,) for line in change_summary(obj.details))
        )

    # As text: a link would lead marketers to the user pages they may not open.
    @admin.display(description=_("changed by"))
    def changed_by_name(self, obj: CampaignChange) -> str:
        return obj.changed_by.get_username() if obj.changed_by else "-"
