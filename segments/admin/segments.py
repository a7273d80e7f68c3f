import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from crm.admin.base import (
    CountedDeleteMixin,
    ServiceFormMixin,
    error_messages,
    instance_adopt,
)
from crm.admin.exports import MemberExportMixin
from crm.models import Customer

from ..fields import FIELDS
from ..forms import SegmentForm, check_rule
from ..models import Segment, SegmentEvent
from ..query import field_syntax
from ..selectors import (
    segment_explain,
    segment_is_member,
    segment_member_list,
    segment_overlaps,
    segment_preview,
)
from ..services import (
    recompute_later,
    segment_create,
    segment_delete,
    segment_update,
)
from .panels import segment_min_size, segment_size_chart

PREVIEW_SAMPLE = 20
MEMBERS_SHOWN = 50
EVENTS_SHOWN = 50
SEGMENT_FIELDS = ("name", "description", "kind", "is_active", "channel_preference")


def _sample_row(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.pk,
        "name": str(customer),
        "email": customer.email or "",
        "url": reverse("admin:crm_customer_change", args=[customer.pk]),
    }


@admin.register(Segment)
class SegmentAdmin(
    MemberExportMixin, CountedDeleteMixin, ServiceFormMixin, admin.ModelAdmin
):
    """Segments are written through the services; "Preview" shows who would match."""

    form = SegmentForm
    list_display = [
        "name",
        "slug",
        "kind",
        "is_active",
        "size_display",
        "channels_display",
        "last_computed_at",
    ]
    list_filter = ["kind", "is_active"]
    search_fields = ["name", "slug", "description"]
    list_per_page = 100
    actions = ["recompute", "export_members_csv"]
    # The history goes with its segment (segment_delete).
    deleted_log = (SegmentEvent, "segment")
    change_form_template = "admin/segments/segment/change_form.html"
    rule_fieldset = (
        _("Rule"),
        {
            "fields": ["query", "rules"],
            "description": _(
                "Write the rule as a query or as JSON. Preview shows who matches "
                "without saving."
            ),
        },
    )

    def get_fieldsets(self, request: HttpRequest, obj: Segment | None = None):
        main = ["name", "slug", "kind", "description", "is_active"]
        fieldsets = [
            (None, {"fields": main}),
            self.rule_fieldset,
            (_("Reaching them"), {"fields": ["channel_preference"]}),
        ]
        if obj is not None:
            fieldsets.append(
                (
                    _("Computed"),
                    {
                        "fields": [
                            ("size", "last_computed_at"),
                            ("created_at", "updated_at"),
                        ]
                    },
                )
            )
        return fieldsets

    def get_readonly_fields(self, request: HttpRequest, obj: Segment | None = None):
        if obj is None:
            return []
        # The slug is how rules and integrations refer to a segment: fixed once made.
        return ["slug", "size", "last_computed_at", "created_at", "updated_at"]

    def get_prepopulated_fields(self, request: HttpRequest, obj=None):
        return {"slug": ["name"]} if obj is None else {}

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        if request.method != "POST" or "_preview" not in request.POST:
            return form_class

        class PreviewForm(form_class):
            def is_valid(self) -> bool:
                # Validated for its messages and its rule, but never saved: the
                # change view shows the form again, with the preview.
                super().is_valid()
                return False

        return PreviewForm

    def save_model(self, request: HttpRequest, obj: Segment, form, change: bool):
        data = form.cleaned_data
        if change:
            # The form has already copied its values onto `obj`; the service compares
            # against the stored row to know whether the members must be recomputed.
            segment = Segment.objects.get(pk=obj.pk)
            fields = {
                name: data[name] for name in SEGMENT_FIELDS if name in form.changed_data
            }
            segment = segment_update(segment=segment, **form.service_rule(), **fields)
        else:
            segment = segment_create(
                slug=data.get("slug") or None,
                **{name: data[name] for name in SEGMENT_FIELDS},
                **form.service_rule(),
            )
        instance_adopt(obj, segment)

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        form = context["adminform"].form
        minimum = segment_min_size()
        context["min_size"] = minimum
        context["syntax_caret"] = getattr(form, "syntax_caret", None)
        context["rule_fields"] = [
            {
                "name": spec.name,
                "ops": ", ".join(sorted(spec.ops)),
                "syntax": field_syntax(spec.name, spec.ops),
                "help": spec.help,
                "choices": ", ".join(spec.choices),
            }
            for spec in sorted(FIELDS.values(), key=lambda spec: spec.name)
        ]
        context["preview_url"] = reverse("admin:segments_segment_preview")
        if request.method == "POST" and "_preview" in request.POST:
            context["preview_requested"] = True
            if getattr(form, "checked_rules", None) is not None:
                count, sample = segment_preview(
                    rules=form.checked_rules, limit=PREVIEW_SAMPLE
                )
                context["preview"] = {
                    "count": count,
                    "sample": sample,
                    "tiny": count < minimum,
                }
        if obj is not None and obj.pk is not None:
            context.update(self._panels(obj, minimum))
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def _panels(self, segment: Segment, minimum: int) -> dict[str, Any]:
        return {
            "tiny": (
                segment.is_active
                and segment.last_computed_at is not None
                and segment.size < minimum
            ),
            "overlaps": segment_overlaps(segment=segment) if segment.is_active else [],
            "members": list(segment_member_list(segment=segment)[:MEMBERS_SHOWN]),
            "members_shown": MEMBERS_SHOWN,
            "members_url": (
                reverse("admin:crm_customer_changelist") + f"?segment={segment.pk}"
            ),
            "events": list(
                segment.events.select_related("customer", "contact").order_by(
                    "-occurred_at", "-id"
                )[:EVENTS_SHOWN]
            ),
            "events_shown": EVENTS_SHOWN,
            "events_url": (
                reverse("admin:segments_segmentevent_changelist")
                + f"?segment__id__exact={segment.pk}"
            ),
            "chart": segment_size_chart(segment),
        }

    @admin.display(description=_("members"), ordering="size")
    def size_display(self, obj: Segment) -> str:
        minimum = segment_min_size()
        if obj.is_active and obj.last_computed_at is not None and obj.size < minimum:
            return format_html(
                '{} <span class="segment-tiny" title="{}">⚠ {}</span>',
                obj.size,
                gettext("Segments under %(minimum)d members rarely pay off.")
                % {"minimum": minimum},
                gettext("under %(minimum)d") % {"minimum": minimum},
            )
        return str(obj.size)

    @admin.display(description=_("channels"))
    def channels_display(self, obj: Segment) -> str:
        return ", ".join(obj.channel_preference) or "-"

    @admin.action(description=_("Recompute members"), permissions=["change"])
    def recompute(self, request: HttpRequest, queryset: QuerySet[Segment]) -> None:
        # The whole-base recompute evaluates every active segment in one pass, so
        # one task serves any selection.
        recompute_later()
        self.message_user(
            request,
            gettext("Recompute started; member counts update when it finishes."),
            messages.SUCCESS,
        )

    # Deleting goes through segment_delete, which refuses while a rule uses the
    # segment -------------------------------------------------------------------

    def delete_view(self, request: HttpRequest, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as error:
            for message in error_messages(error):
                self.message_user(request, message, messages.ERROR)
            return HttpResponseRedirect(
                reverse("admin:segments_segment_change", args=[object_id])
            )

    def delete_model(self, request: HttpRequest, obj: Segment) -> None:
        segment_delete(segment=obj)

    def get_actions(self, request: HttpRequest):
        # One at a time, from the segment's page: the bulk action would report
        # every selected segment deleted even when a rule kept one.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def export_members(self, obj: Segment) -> QuerySet[Customer]:
        return segment_member_list(segment=obj)

    # Extra views -----------------------------------------------------------------

    def get_urls(self):
        own = [
            path(
                "preview/",
                self.admin_site.admin_view(self.preview_view),
                name="segments_segment_preview",
            ),
            path(
                "<path:object_id>/explain/<int:customer_id>/",
                self.admin_site.admin_view(self.explain_view),
                name="segments_segment_explain",
            ),
        ]
        return own + super().get_urls()

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """Count and sample for the rule being typed: ?query=... or ?rules=<JSON>."""
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        query = request.GET.get("query", "").strip() or None
        rules = None
        if query is None:
            text = request.GET.get("rules", "").strip()
            if not text:
                return JsonResponse({"ok": False, "error": gettext("Write a rule.")})
            try:
                rules = json.loads(text)
            except ValueError as exc:
                return JsonResponse(
                    {"ok": False, "error": gettext("Invalid JSON: %s") % exc}
                )
        checked, message, caret = check_rule(
            query=query, rules=rules, own_slug=request.GET.get("slug") or None
        )
        if checked is None:
            return JsonResponse({"ok": False, "error": message, "caret": caret})
        count, sample = segment_preview(rules=checked, limit=PREVIEW_SAMPLE)
        return JsonResponse(
            {
                "ok": True,
                "count": count,
                "tiny": count < segment_min_size(),
                "sample": [_sample_row(customer) for customer in sample],
            }
        )

    def explain_view(
        self, request: HttpRequest, object_id: str, customer_id: int
    ) -> TemplateResponse:
        segment = self.get_object(request, object_id)
        if segment is None:
            raise Http404
        if not self.has_view_or_change_permission(request, segment):
            raise PermissionDenied
        if not request.user.has_perm("crm.view_customer"):
            raise PermissionDenied
        customer = get_object_or_404(Customer, pk=customer_id)
        explanation = segment_explain(customer=customer, segment=segment)
        is_member = segment_is_member(segment=segment, customer=customer)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Why %(customer)s is %(verdict)s %(segment)s")
            % {
                "customer": customer,
                "verdict": (
                    gettext("in") if explanation["result"] else gettext("not in")
                ),
                "segment": segment,
            },
            "opts": self.opts,
            "segment": segment,
            "customer": customer,
            "explanation": explanation,
            "is_member": is_member,
            "stale": is_member != explanation["result"],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/segments/segment/explain.html", context)
