"""The campaign pages: the list with delivery counts, the form with its messages,
and the buttons that schedule, pause, resume and cancel."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.admin.base import (
    ServiceFormMixin,
    error_messages,
    instance_adopt,
    local_datetime,
)
from crm.charts import channel_colour, chart_spec, dataset
from crm.models import Channel, Customer
from personas.models import Persona
from personas.selectors import persona_member_list
from segments.models import Segment
from segments.selectors import segment_member_list

from ..forms import CampaignForm, MessageForm
from ..models import Campaign, Delivery, Message
from ..personalisation import (
    MessageRenderError,
    customer_contexts,
    message_render,
    sample_context,
)
from ..selectors import delivery_counts
from ..services.campaigns import (
    SAFE_AFTER_SCHEDULING,
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_update,
)
from ..services.planning import audience_preview
from ..services.sending import deliveries_resend_unknown
from .display import change_summary

Status = Campaign.Status
AUDIENCE_FIELDS = ("include_segments", "include_personas", "exclude_segments")
TRIGGER_FIELDS = {
    "trigger_segment": "segment",
    "trigger_delay_minutes": "delay_minutes",
    "trigger_reentry_days": "reentry_days",
}
# Form fields campaign_create/campaign_update take as they are.
PLAIN_FIELDS = (
    "name",
    "description",
    "kind",
    "channels",
    "holdout_percent",
    "priority",
    "frequency_cap",
    "frequency_window_days",
    "send_at",
    "recurrence",
    "costs",
    "attribution_days",
)
MESSAGE_FIELDS = Message.EDITABLE_FIELDS
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
    return [
        CampaignButton(
            name="schedule",
            label=gettext("Schedule"),
            done=gettext("%(name)s is scheduled."),
            statuses=frozenset({Status.DRAFT}),
            service=campaign_schedule,
            confirm=gettext(
                "Schedule the campaign? Its audience and messages cannot change "
                "afterwards."
            ),
        ),
        CampaignButton(
            name="pause",
            label=gettext("Pause"),
            done=gettext("%(name)s is paused: nothing more is sent until resumed."),
            statuses=frozenset({Status.SCHEDULED, Status.SENDING, Status.ACTIVE}),
            service=campaign_pause,
        ),
        CampaignButton(
            name="resume",
            label=gettext("Resume"),
            done=gettext("%(name)s goes on from where it was paused."),
            statuses=frozenset({Status.PAUSED}),
            service=campaign_resume,
        ),
        CampaignButton(
            name="cancel",
            label=gettext("Cancel campaign"),
            done=gettext("%(name)s is cancelled; what was not sent is skipped."),
            statuses=frozenset(
                {Status.SCHEDULED, Status.SENDING, Status.ACTIVE, Status.PAUSED}
            ),
            service=campaign_cancel,
            confirm=gettext(
                "Cancel the campaign for good? Messages not sent yet are skipped."
            ),
        ),
        CampaignButton(
            name="resend_unknown",
            label=gettext("Resend unknown"),
            done=gettext(
                "%(count)s deliveries of %(name)s whose outcome is unknown are "
                "planned again."
            ),
            statuses=frozenset(
                {
                    Status.SCHEDULED,
                    Status.SENDING,
                    Status.ACTIVE,
                    Status.PAUSED,
                    Status.SENT,
                }
            ),
            service=deliveries_resend_unknown,
            confirm=gettext(
                "A worker was lost while sending these messages, so some may have "
                "arrived. Send them again, accepting that some customers may get "
                "the message twice?"
            ),
        ),
    ]


# Statuses whose audience is still worth previewing: it has not all gone yet.
PREVIEW_STATUSES = frozenset(
    {Status.DRAFT, Status.SCHEDULED, Status.ACTIVE, Status.PAUSED, Status.SENDING}
)


def campaign_locked(campaign: Campaign | None) -> bool:
    """Scheduled once, a campaign's audience, channels and messages are fixed:
    deliveries and the control group are chosen from them."""
    return campaign is not None and campaign.status != Status.DRAFT


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
        (None, {"fields": ["subject", "body_text", "body_html", "preview_link"]}),
    ]
    readonly_fields = ["preview_link"]
    autocomplete_fields = ["segment", "persona"]
    show_change_link = False

    @admin.display(description=_("preview"))
    def preview_link(self, obj: Message) -> str:
        if obj is None or obj.pk is None:
            return gettext("Save to preview the message for a customer.")
        return format_html(
            '<a href="{}" class="message-preview-link">{}</a>',
            reverse(
                "admin:campaigns_campaign_message_preview",
                args=[obj.campaign_id, obj.pk],
            ),
            gettext("As a customer receives it"),
        )

    def get_extra(self, request: HttpRequest, obj: Campaign | None = None, **kwargs):
        return 1 if obj is None else 0

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).select_related("segment", "persona")

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return not campaign_locked(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return not campaign_locked(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return not campaign_locked(obj) and super().has_delete_permission(request, obj)


class CampaignChangeList(ChangeList):
    """The campaign list, with each campaign's deliveries per status as
    `delivery_counts`: one aggregate query for the page."""

    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Iterating fills the page's result cache: the template shows these objects.
        campaigns = list(self.result_list)
        counts = delivery_counts(campaign_ids=[c.pk for c in campaigns])
        for campaign in campaigns:
            campaign.delivery_counts = counts[campaign.pk]


@admin.register(Campaign)
class CampaignAdmin(ServiceFormMixin, admin.ModelAdmin):
    """Campaigns: who receives what on which channel, and the buttons that send.

    The form and its messages are written by campaign_create/campaign_update in
    one call, so a refused message keeps the campaign unsaved too.
    """

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
    # get_absolute_url is this very page.
    view_on_site = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        # Names only: the list shows the audience as text.
        names = ("id", "name", "slug")
        return Campaign.objects.select_related(
            "trigger_segment", "created_by"
        ).prefetch_related(
            Prefetch("include_segments", Segment.objects.only(*names)),
            Prefetch("include_personas", Persona.objects.only(*names)),
            Prefetch("exclude_segments", Segment.objects.only(*names)),
        )

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
        if campaign_locked(obj):
            # Shown in words, in order, rather than as the stored JSON list.
            reach = fieldsets[2][1]["fields"]
            reach[reach.index("channels")] = "channel_order"
        if obj is not None:
            fieldsets.insert(
                1,
                (
                    _("Status"),
                    {
                        "fields": [
                            ("status", "next_run_at"),
                            ("created_by_name", "created_at"),
                        ]
                    },
                ),
            )
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Campaign | None = None):
        if obj is None:
            return []
        # The slug is how the API and the links refer to a campaign: fixed once made.
        fields = ["slug", "status", "next_run_at", "created_by_name", "created_at"]
        if campaign_locked(obj):
            fields.extend(
                name
                for name in self.form.base_fields
                if name not in SAFE_AFTER_SCHEDULING and name != "slug"
            )
            fields.append("channel_order")
        return fields

    @admin.display(description=_("channels"))
    def channel_order(self, obj: Campaign) -> str:
        labels = dict(Channel.choices)
        return (
            ", then ".join(
                str(labels.get(channel, channel)) for channel in obj.channels
            )
            or "-"
        )

    def get_prepopulated_fields(self, request: HttpRequest, obj=None):
        return {"slug": ["name"]} if obj is None else {}

    def save_model(self, request: HttpRequest, obj: Campaign, form, change: bool):
        # Saved with its messages in save_related, by one service call.
        pass

    def save_related(self, request: HttpRequest, form, formsets, change: bool):
        data = form.cleaned_data
        changed = set(form.changed_data)
        fields = {name: data[name] for name in PLAIN_FIELDS if name in data}
        audience = {name: list(data[name]) for name in AUDIENCE_FIELDS if name in data}
        trigger = {
            key: data[name] for name, key in TRIGGER_FIELDS.items() if name in data
        }
        messages_formset = next(
            (f for f in formsets if f.model is Message and f.forms), None
        )
        if not change:
            campaign = campaign_create(
                created_by=request.user,
                slug=data.get("slug") or "",
                audience=audience,
                trigger=trigger,
                messages=formset_messages(messages_formset),
                **fields,
            )
        else:
            updates = {name: v for name, v in fields.items() if name in changed}
            if changed & set(AUDIENCE_FIELDS):
                updates["audience"] = audience
            if changed & set(TRIGGER_FIELDS):
                updates["trigger"] = trigger
            if messages_formset is not None and messages_formset.has_changed():
                updates["messages"] = formset_messages(messages_formset)
            campaign = Campaign.objects.get(pk=form.instance.pk)
            if updates:
                campaign = campaign_update(
                    campaign=campaign, changed_by=request.user, **updates
                )
        instance_adopt(form.instance, campaign)
        for formset in formsets:
            # What formset.save() would leave for the admin's change message; the
            # service has written the messages.
            formset.new_objects, formset.changed_objects = [], []
            formset.deleted_objects = []

    def delete_model(self, request: HttpRequest, obj: Campaign) -> None:
        campaign_delete(campaign=obj)

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

    # As text: a link would lead marketers to the user pages they may not open.
    @admin.display(description=_("created by"))
    def created_by_name(self, obj: Campaign) -> str:
        return obj.created_by.get_username() if obj.created_by else "-"

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
        context["locked"] = campaign_locked(obj)
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def _panels(self, request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
        counts = delivery_counts(campaign_ids=[campaign.pk])[campaign.pk]
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
            "preview_url": (
                reverse("admin:campaigns_campaign_preview", args=[campaign.pk])
                if campaign.status in PREVIEW_STATUSES
                else ""
            ),
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
            "changes": [
                {"change": change, "summary": change_summary(change.details)}
                for change in campaign.changes.select_related("changed_by").order_by(
                    "-changed_at", "-id"
                )[:CHANGES_SHOWN]
            ],
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
                "<path:object_id>/messages/<int:message_id>/preview/",
                self.admin_site.admin_view(self.message_preview_view),
                name="campaigns_campaign_message_preview",
            ),
            # After the message preview, whose path also ends in preview/.
            path(
                "<path:object_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="campaigns_campaign_preview",
            ),
        ]
        own += [
            path(
                f"<path:object_id>/{button.name.replace('_', '-')}/",
                self.admin_site.admin_view(self._button_view(button)),
                name=f"campaigns_campaign_{button.name}",
            )
            for button in campaign_buttons()
        ]
        return own + super().get_urls()

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Who a run planned now would reach, on which channel, and who not and
        why; POST, since the figures cost a planning pass over the audience."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        campaign = self.get_object(request, object_id)
        if campaign is None:
            raise Http404
        if not self.has_view_or_change_permission(request, campaign):
            raise PermissionDenied
        preview = audience_preview(campaign=campaign)
        labels = dict(Channel.choices)
        channels = [
            {"channel": channel, "label": labels.get(channel, channel), "count": n}
            for channel, n in sorted(
                preview.by_channel.items(), key=lambda item: (-item[1], item[0])
            )
        ]
        chart = None
        if channels:
            chart = chart_spec(
                "campaign-preview-channel-chart",
                kind="bar",
                title=gettext("Customers per channel"),
                labels=[row["label"] for row in channels],
                datasets=[
                    dataset(
                        gettext("Customers"),
                        [row["count"] for row in channels],
                        colour=[channel_colour(row["channel"]) for row in channels],
                    )
                ],
                horizontal=True,
            )
        panels = self._panels(request, campaign)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Audience of %(name)s") % {"name": campaign},
            "campaign": campaign,
            "preview": preview,
            "channels": channels,
            "chart": chart,
            "reasons": sorted(
                preview.skipped_reasons.items(), key=lambda item: (-item[1], item[0])
            ),
            "campaign_buttons": [
                button
                for button in panels["campaign_buttons"]
                if button["name"] == "schedule"
            ],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/campaigns/campaign/preview.html", context
        )

    def message_preview_view(
        self, request: HttpRequest, object_id: str, message_id: int
    ) -> TemplateResponse:
        """The message rendered for one customer (?customer=ID) or a sample one."""
        campaign = self.get_object(request, object_id)
        if campaign is None:
            raise Http404
        if not self.has_view_or_change_permission(request, campaign):
            raise PermissionDenied
        message = get_object_or_404(
            campaign.messages.select_related("segment", "persona"), pk=message_id
        )
        customer = None
        # Real names and points only for whom may see customers.
        if request.user.has_perm("crm.view_customer"):
            customer = preview_customer(
                campaign, message, request.GET.get("customer", "")
            )
        context = (
            customer_contexts([customer.pk]).get(customer.pk)
            if customer is not None
            else None
        )
        if context is None:
            customer, context = None, sample_context()
        # Email carries the unsubscribe link the builder adds per delivery.
        context.setdefault("unsubscribe_url", sample_context()["unsubscribe_url"])
        rendered, error = None, ""
        try:
            rendered = message_render(message=message, context=context)
        except MessageRenderError as exc:
            error = gettext("The message cannot be rendered: %(error)s") % {
                "error": exc
            }
        page = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Message %(name)s") % {"name": message},
            "campaign": campaign,
            "message": message,
            "customer": customer,
            "customer_url": (
                reverse("admin:crm_customer_change", args=[customer.pk])
                if customer is not None
                else ""
            ),
            "rendered": rendered,
            "error": error,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request, "admin/campaigns/campaign/message_preview.html", page
        )

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


def preview_customer(campaign: Campaign, message: Message, chosen: str):
    """The customer to preview `message` for: the chosen one, else the first of
    the message's segment or persona, else of the campaign's audience."""
    if chosen.isdigit():
        return Customer.objects.filter(pk=int(chosen), erased_at__isnull=True).first()
    members = None
    if message.segment is not None:
        members = segment_member_list(segment=message.segment)
    elif message.persona is not None:
        members = persona_member_list(persona=message.persona)
    else:
        segment = campaign.include_segments.first()
        persona = campaign.include_personas.first()
        if segment is not None:
            members = segment_member_list(segment=segment)
        elif persona is not None:
            members = persona_member_list(persona=persona)
    if members is None:
        return None
    return members.filter(erased_at__isnull=True).first()


def formset_messages(formset) -> list[dict[str, Any]]:
    """The messages of the inline formset as campaign_create/update take them:
    every kept form, in the page's order (the service replaces them all)."""
    if formset is None:
        return []
    return [
        {name: form.cleaned_data.get(name) for name in MESSAGE_FIELDS}
        for form in formset.forms
        if form.cleaned_data
        and not form.cleaned_data.get("DELETE")
        and (form.instance.pk or form.has_changed())
    ]
