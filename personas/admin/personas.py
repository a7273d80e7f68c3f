from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.admin.base import ServiceFormMixin, instance_adopt
from crm.admin.exports import MemberExportMixin
from crm.models import Customer

from ..forms import PersonaForm
from ..models import Persona
from ..selectors import (
    persona_card,
    persona_list,
    persona_member_list,
    persona_overview,
)
from ..services import persona_create, persona_delete, persona_update
from ..services.personas import TRAIT_FIELDS
from .charts import bar_chart, overview_charts, stacked_chart

FORM_TRAITS = sorted(TRAIT_FIELDS - {"suggestion"})


class SuggestForm(forms.Form):
    k = forms.IntegerField(
        label=_("number of personas"),
        required=False,
        min_value=1,
        max_value=12,
        help_text=_("Leave empty to let the silhouette score choose."),
    )


@admin.register(Persona)
class PersonaAdmin(MemberExportMixin, ServiceFormMixin, admin.ModelAdmin):
    """Personas are written through the services; the card and the overview show
    the matched customers' real figures."""

    form = PersonaForm
    list_display = [
        "avatar_display",
        "name",
        "title",
        "status",
        "priority",
        "assigned_display",
        "card_link",
    ]
    list_display_links = ["name"]
    list_filter = ["status"]
    search_fields = ["name", "slug", "title"]
    actions = ["activate", "retire", "figures_refresh", "export_members_csv"]
    change_list_template = "admin/personas/persona/change_list.html"
    change_form_template = "admin/personas/persona/change_form.html"
    fieldsets = [
        (None, {"fields": ["name", "slug", "title", "avatar", "photo_url"]}),
        (_("Matching"), {"fields": ["status", "priority", "query", "rules"]}),
        (
            _("Who"),
            {
                "fields": [
                    ("age_min", "age_max"),
                    "gender",
                    "job_title",
                    "family_situation",
                    "income_band",
                    "location",
                    "web_savviness",
                ]
            },
        ),
        (
            _("How they shop"),
            {
                "fields": [
                    "research",
                    "buying_channels",
                    ("purchases_per_month", "typical_basket"),
                    "brand_loyalty",
                ]
            },
        ),
        (
            _("What drives them"),
            {
                "fields": [
                    "goals",
                    "pain_points",
                    "values",
                    "buying_role",
                    "social_influence",
                    "service_needs",
                ]
            },
        ),
        (_("Reaching them"), {"fields": ["preferred_channels", "message_tone"]}),
        (_("Evidence"), {"fields": ["notes", "sources", "source_notes"]}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Persona]:
        return persona_list()

    def get_readonly_fields(self, request: HttpRequest, obj: Persona | None = None):
        # The slug is how rules refer to a persona: fixed once made.
        return ["slug"] if obj is not None else []

    def get_prepopulated_fields(self, request: HttpRequest, obj=None):
        return {"slug": ["name"]} if obj is None else {}

    def save_model(self, request: HttpRequest, obj: Persona, form, change: bool):
        data = form.cleaned_data
        traits = {name: data[name] for name in FORM_TRAITS if name in data}
        if change:
            persona = Persona.objects.get(pk=obj.pk)
            changed = {n: v for n, v in traits.items() if n in form.changed_data}
            persona = persona_update(persona=persona, **form.service_rule(), **changed)
        else:
            persona = persona_create(
                slug=data.get("slug") or None, **form.service_rule(), **traits
            )
        instance_adopt(obj, persona)

    def delete_model(self, request: HttpRequest, obj: Persona) -> None:
        persona_delete(persona=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for persona in queryset:
            persona_delete(persona=persona)

    @admin.display(description="")
    def avatar_display(self, obj: Persona) -> str:
        return format_html('<span class="persona-avatar">{}</span>', obj.initials)

    @admin.display(description=_("customers"), ordering="assigned")
    def assigned_display(self, obj: Persona) -> int:
        return obj.assigned

    @admin.display(description=_("card"))
    def card_link(self, obj: Persona) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:personas_persona_card", args=[obj.pk]),
            gettext("Persona card"),
        )

    # Actions -----------------------------------------------------------------------

    @admin.action(
        description=_("Accept: start matching customers"), permissions=["change"]
    )
    def activate(self, request: HttpRequest, queryset: QuerySet[Persona]) -> None:
        for persona in queryset.exclude(status=Persona.Status.ACTIVE):
            persona_update(persona=persona, status=Persona.Status.ACTIVE)
        self.message_user(
            request,
            gettext("Activated; customers are matched once the recompute finishes."),
            messages.SUCCESS,
        )

    @admin.action(
        description=_("Retire: stop matching customers"), permissions=["change"]
    )
    def retire(self, request: HttpRequest, queryset: QuerySet[Persona]) -> None:
        for persona in queryset.exclude(status=Persona.Status.RETIRED):
            persona_update(persona=persona, status=Persona.Status.RETIRED)
        self.message_user(request, gettext("Retired."), messages.SUCCESS)

    @admin.action(description=_("Refresh the real figures"), permissions=["view"])
    def figures_refresh(self, request: HttpRequest, queryset: QuerySet) -> None:
        from ..tasks import persona_figures_task

        transaction.on_commit(persona_figures_task.delay)
        self.message_user(
            request, gettext("Figures are being recomputed."), messages.SUCCESS
        )

    def export_members(self, obj: Persona) -> QuerySet[Customer]:
        return persona_member_list(persona=obj)

    # Extra views -----------------------------------------------------------------

    def get_urls(self):
        own = [
            path(
                "overview/",
                self.admin_site.admin_view(self.overview_view),
                name="personas_persona_overview",
            ),
            path(
                "suggest/",
                self.admin_site.admin_view(self.suggest_view),
                name="personas_persona_suggest",
            ),
            path(
                "<int:object_id>/card/",
                self.admin_site.admin_view(self.card_view),
                name="personas_persona_card",
            ),
        ]
        return own + super().get_urls()

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
        }

    def card_view(self, request: HttpRequest, object_id: int) -> TemplateResponse:
        """The printable one-page persona card, with the real figures beside it."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        persona = get_object_or_404(
            Persona.objects.select_related("figures"), pk=object_id
        )
        card = persona_card(persona=persona)
        facts = card["facts"]
        context = {
            **self._context(request, str(persona)),
            **card,
            "channel_svg": stacked_chart(
                gettext("Channel mix"), [(gettext("Orders"), facts.channel_shares)]
            )
            if facts.channel_shares
            else "",
            "age_svg": bar_chart(
                gettext("Ages"),
                [(b["label"], b["count"], f"{b['share']:.0%}") for b in card["ages"]],
            )
            if card["ages"]
            else "",
        }
        return TemplateResponse(request, "personas/card.html", context)

    def overview_view(self, request: HttpRequest) -> TemplateResponse:
        """All personas side by side, with charts and warnings."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        overview = persona_overview()
        context = {
            **self._context(request, gettext("Personas compared")),
            "overview": overview,
            "charts": overview_charts(overview),
        }
        return TemplateResponse(
            request, "admin/personas/persona/overview.html", context
        )

    def suggest_view(self, request: HttpRequest):
        """Cluster the customers and offer the clusters as draft personas."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = SuggestForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            from ..tasks import personas_suggest_task

            k = form.cleaned_data["k"]
            transaction.on_commit(lambda: personas_suggest_task.delay(k))
            self.message_user(
                request,
                gettext(
                    "Clustering started; the suggested personas appear below as "
                    "drafts when it finishes. Edit their rules and accept them."
                ),
                messages.SUCCESS,
            )
            return HttpResponseRedirect(
                reverse("admin:personas_persona_changelist") + "?status__exact=draft"
            )
        context = {
            **self._context(request, gettext("Suggest personas from data")),
            "form": form,
        }
        return TemplateResponse(request, "admin/personas/persona/suggest.html", context)
