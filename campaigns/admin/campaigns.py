"""The campaign pages: the list with delivery counts, the form with its messages,
and the buttons that schedule, pause, resume and cancel."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.admin.base import error_messages, local_datetime

from ..forms import CampaignForm, MessageForm
from ..models import Campaign, Delivery, Message
from ..selectors import (
    campaign_change_list,
    campaign_delivery_counts,
    campaign_list,
    campaigns_delivery_counts,
)

Status = Campaign.Status
# Once a campaign sends, who receives it and what they receive are history: the
# deliveries and the control group were chosen from them.
LOCKED_STATUSES = {Status.SENDING, Status.SENT, Status.CANCELLED}
AUDIENCE_FIELDS = ("include_segments", "include_personas", "exclude_segments")
LOCKED_FIELDS = (
    *AUDIENCE_FIELDS,
    "holdout_percent",
    "channels",
    "trigger_segment",
)
CHANGES_SHOWN = 50
RUNS_SHOWN = 20
# The delivery statuses the list shows a column for, in a campaign's life order.
LIST_COUNTS = (
    Delivery.Status.SENT,
    Delivery.Status.FAILED,
    Delivery.Status.HELD_OUT,
    Delivery.Status.SKIPPED,
    Delivery.Status.UNKNOWN,
)
# Deliveries still on their way: planned, waiting for quiet hours to end, or out.
PENDING = (Delivery.Status.PLANNED, Delivery.Status.DEFERRED, Delivery.Status.SENDING)


@dataclass(frozen=True)
class CampaignButton:
    """One POST button on the change page and the service it calls."""

    name: str
    label: str
    done: str
    statuses: frozenset[str]
    service: Callable[..., Any]
    confirm: str = ""


def campaign_buttons() -> list[CampaignButton]:
    """The workflow buttons, in the order they appear on the page."""
    return []


def deliveries_url(campaign: Campaign, **filters: str) -> str:
    query = "&".join(
        [f"campaign__id__exact={campaign.pk}"]
        + [f"{name}={value}" for name, value in filters.items()]
    )
    return reverse("admin:campaigns_delivery_changelist") + "?" + query


class MessageInline(admin.StackedInline):
    """The campaign's messages: per channel, and per segment or persona."""

    model = Message
    form = MessageForm
    fieldsets = [
        (None, {"fields": [("name", "channel"), ("segment", "persona", "weight")]}),
        (None, {"fields": ["subject", "body_text", "body_html"]}),
    ]
    autocomplete_fields = ["segment", "persona"]
    show_change_link = False

    def get_extra(self, request: HttpRequest, obj: Campaign | None = None, **kwargs):
        return 1 if obj is None else 0

    def _locked(self, obj: Campaign | None) -> bool:
        return obj is not None and obj.status in LOCKED_STATUSES

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self._locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self._locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return not self._locked(obj) and super().has_delete_permission(request, obj)


class CampaignChangeList(ChangeList):
    """The campaign list, with each campaign's deliveries per status as
    `delivery_counts`: one aggregate query for the page."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Iterating fills the page's result cache: the template shows these objects.
        campaigns = list(self.result_list)
        counts = campaigns_delivery_counts(campaign_ids=[c.pk for c in campaigns])
        for campaign in campaigns:
            campaign.delivery_counts = counts[campaign.pk]


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    """Campaigns: who receives what on which channel, and the buttons that send."""

    form = CampaignForm
    inlines = [MessageInline]
    list_display = [
        "name",
        "kind",
        "status",
        "audience_display",
        "next_run_display",
        "pending_display",
        *[f"{status}_display" for status in LIST_COUNTS],
    ]
    list_filter = ["status", "kind"]
    search_fields = ["name", "slug", "description"]
    search_help_text = _("Part of the name, slug or description.")
    list_per_page = 50
    autocomplete_fields = [*AUDIENCE_FIELDS, "trigger_segment"]
    change_form_template = "admin/campaigns/campaign/change_form.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return campaign_list()

    def get_changelist(self, request: HttpRequest, **kwargs):
        return CampaignChangeList

    def get_fieldsets(self, request: HttpRequest, obj: Campaign | None = None):
        fieldsets = [
            (None, {"fields": ["name", "slug", "description", "kind"]}),
            (
                _("Who receives it"),
                {
                    "fields": [*AUDIENCE_FIELDS, "holdout_percent"],
                    "description": _(
                        "Members of any of the chosen segments and personas, minus "
                        "the excluded segments. The control group receives nothing "
                        "and shows what the campaign changed."
                    ),
                },
            ),
            (
                _("How to reach them"),
                {
                    "fields": [
                        "channels",
                        "priority",
                        ("frequency_cap", "frequency_window_days"),
                    ],
                    "description": _(
                        "Each customer gets the first channel that reaches them: "
                        "their own preference, then their persona's, then their "
                        "segment's, then the order below."
                    ),
                },
            ),
            (
                _("When"),
                {
                    "fields": [
                        "send_at",
                        "recurrence",
                        "trigger_segment",
                        ("trigger_delay_minutes", "trigger_reentry_days"),
                    ],
                    "description": _(
                        "One-off: the moment to send. Recurring: the rule. "
                        "Triggered: the segment to watch."
                    ),
                },
            ),
            (
                _("Costs and measurement"),
                {"fields": ["costs", "attribution_days"], "classes": ["collapse"]},
            ),
        ]
        if obj is not None:
            fieldsets.insert(
                1,
                (
                    _("Status"),
                    {
                        "fields": [
                            ("status", "next_run_at"),
                            ("created_by", "created_at"),
                        ]
                    },
                ),
            )
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None):
        if obj is None:
            return []
        fields = ["status", "next_run_at", "created_by", "created_at"]
        # The slug is how the API and the links refer to a campaign: fixed once made.
        fields.append("slug")
        if obj.status != Status.DRAFT:
            fields.append("kind")
        if obj.status in LOCKED_STATUSES:
            fields.extend(LOCKED_FIELDS)
        return fields

    def get_prepopulated_fields(self, request: HttpRequest, obj=None):
        return {"slug": ["name"]} if obj is None else {}

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        # What was scheduled has deliveries and a change log to keep: cancel it.
        if obj is not None and obj.status != Status.DRAFT:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest):
        # The bulk delete would not ask each campaign whether it is a draft.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # The list --------------------------------------------------------------------

    @admin.display(description=_("audience"))
    def audience_display(self, obj: Campaign) -> str:
        parts = []
        included = [s.name for s in obj.include_segments.all()] + [
            p.name for p in obj.include_personas.all()
        ]
        if obj.kind == Campaign.Kind.TRIGGERED and obj.trigger_segment is not None:
            parts.append(
                gettext("entering %(segment)s") % {"segment": obj.trigger_segment}
            )
        if included:
            parts.append(", ".join(included))
        excluded = [s.name for s in obj.exclude_segments.all()]
        if excluded:
            parts.append(gettext("not %(names)s") % {"names": ", ".join(excluded)})
        return "; ".join(parts) or "-"

    @admin.display(description=_("next run"), ordering="next_run_at")
    def next_run_display(self, obj: Campaign) -> str:
        if obj.next_run_at is not None:
            return local_datetime(obj.next_run_at)
        if obj.status == Status.DRAFT and obj.send_at is not None:
            return gettext("%(when)s (once scheduled)") % {
                "when": local_datetime(obj.send_at)
            }
        return "-"

    def _count_link(self, obj: Campaign, statuses: tuple[str, ...]) -> str:
        count = sum(obj.delivery_counts[status] for status in statuses)
        if not count:
            return "0"
        filters = (
            {"status__exact": statuses[0]}
            if len(statuses) == 1
            else {"status__in": ",".join(statuses)}
        )
        return format_html('<a href="{}">{}</a>', deliveries_url(obj, **filters), count)

    @admin.display(description=_("to send"))
    def pending_display(self, obj: Campaign) -> str:
        return self._count_link(obj, PENDING)

    @admin.display(description=_("sent"))
    def sent_display(self, obj: Campaign) -> str:
        return self._count_link(obj, (Delivery.Status.SENT,))

    @admin.display(description=_("failed"))
    def failed_display(self, obj: Campaign) -> str:
        return self._count_link(obj, (Delivery.Status.FAILED,))

    @admin.display(description=_("held out"))
    def held_out_display(self, obj: Campaign) -> str:
        return self._count_link(obj, (Delivery.Status.HELD_OUT,))

    @admin.display(description=_("skipped"))
    def skipped_display(self, obj: Campaign) -> str:
        return self._count_link(obj, (Delivery.Status.SKIPPED,))

    @admin.display(description=_("unknown"))
    def unknown_display(self, obj: Campaign) -> str:
        return self._count_link(obj, (Delivery.Status.UNKNOWN,))

    # The change page -------------------------------------------------------------

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        if obj is not None and obj.pk is not None:
            context.update(self._panels(request, obj))
        context["locked"] = obj is not None and obj.status in LOCKED_STATUSES
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def _panels(self, request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
        counts = campaign_delivery_counts(campaign=campaign)
        may_change = self.has_change_permission(request, campaign)
        buttons = [
            {
                "label": button.label,
                "url": reverse(
                    f"admin:campaigns_campaign_{button.name}", args=[campaign.pk]
                ),
                "name": button.name,
                "confirm": button.confirm,
            }
            for button in campaign_buttons()
            if may_change
            and campaign.status in button.statuses
            and (button.name != "resend_unknown" or counts[Delivery.Status.UNKNOWN])
        ]
        return {
            "campaign_buttons": buttons,
            "delivery_counts": [
                {
                    "status": status,
                    "label": label,
                    "count": counts[status],
                    "url": deliveries_url(campaign, status__exact=status),
                }
                for status, label in Delivery.Status.choices
            ],
            "deliveries_total": sum(counts.values()),
            "deliveries_url": deliveries_url(campaign),
            "runs": list(campaign.runs.order_by("-due_at", "-id")[:RUNS_SHOWN]),
            "runs_url": (
                reverse("admin:campaigns_campaignrun_changelist")
                + f"?campaign__id__exact={campaign.pk}"
            ),
            "changes": list(campaign_change_list(campaign=campaign)[:CHANGES_SHOWN]),
            "changes_shown": CHANGES_SHOWN,
            "changes_url": (
                reverse("admin:campaigns_campaignchange_changelist")
                + f"?campaign__id__exact={campaign.pk}"
            ),
        }

    # The workflow buttons --------------------------------------------------------

    def get_urls(self):
        own = [
            path(
                f"<path:object_id>/{button.name.replace('_', '-')}/",
                self.admin_site.admin_view(self._button_view(button)),
                name=f"campaigns_campaign_{button.name}",
            )
            for button in campaign_buttons()
        ]
        return own + super().get_urls()

    def _button_view(self, button: CampaignButton) -> Callable[..., HttpResponse]:
        def view(request: HttpRequest, object_id: str) -> HttpResponse:
            return self.button_apply(request, object_id, button)

        return view

    def button_apply(
        self, request: HttpRequest, object_id: str, button: CampaignButton
    ) -> HttpResponse:
        """Call the button's service; its refusal becomes an error message."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self.get_object(request, object_id)
        if campaign is None:
            raise Http404
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        try:
            result = button.service(campaign=campaign, user=request.user)
        except ValidationError as error:
            for message in error_messages(error):
                self.message_user(request, message, messages.ERROR)
        else:
            self.message_user(
                request,
                button.done % {"name": campaign.name, "count": result},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(
            reverse("admin:campaigns_campaign_change", args=[campaign.pk])
        )
