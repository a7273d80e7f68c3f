"""Member exports in the admin: the download (for any admin whose objects have
members) and the read-only log of every export."""

from django.contrib import admin, messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ..exports import MEMBER_EXPORT_PERMISSION, member_export_response
from ..models import Channel, Customer, MemberExport
from .base import ObjectSelectRelatedMixin, ReadOnlyAdminMixin


class MemberExportMixin:
    """ "Export members as CSV" for a ModelAdmin: the `export_members_csv` action
    (list it in `actions`) and a link on the change page (`export_url` in the
    template's context). The admin supplies the members with `export_members`."""

    def export_members(self, obj) -> QuerySet[Customer]:
        raise NotImplementedError

    def has_export_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(MEMBER_EXPORT_PERMISSION)

    def _export(self, request: HttpRequest, obj) -> HttpResponse:
        return member_export_response(
            user=request.user, exported=obj, members=self.export_members(obj)
        )

    @admin.action(description=_("Export members as CSV"), permissions=["export"])
    def export_members_csv(self, request: HttpRequest, queryset: QuerySet):
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(
                request,
                gettext("Choose one to export: each export is one file."),
                messages.WARNING,
            )
            return None
        return self._export(request, chosen[0])

    def get_urls(self):
        opts = self.model._meta
        own = [
            path(
                "<path:object_id>/export/",
                self.admin_site.admin_view(self.export_view),
                name=f"{opts.app_label}_{opts.model_name}_export",
            )
        ]
        return own + super().get_urls()

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not self.has_export_permission(request):
            raise PermissionDenied
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        return self._export(request, obj)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if self.has_export_permission(request):
            opts = self.model._meta
            extra_context["export_url"] = reverse(
                f"admin:{opts.app_label}_{opts.model_name}_export", args=[object_id]
            )
        return super().change_view(request, object_id, form_url, extra_context)


class KindFilter(admin.SimpleListFilter):
    """Only the kinds of things exported so far (a segment, a persona)."""

    title = _("kind")
    parameter_name = "kind"

    def lookups(self, request, model_admin):
        kinds = ContentType.objects.filter(
            pk__in=MemberExport.objects.values("content_type")
        ).order_by("model")
        return [(kind.pk, kind_label(kind)) for kind in kinds]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(content_type_id=self.value())
        return queryset


def kind_label(content_type: ContentType) -> str:
    model = content_type.model_class()
    return capfirst(model._meta.verbose_name) if model else content_type.model


@admin.register(MemberExport)
class MemberExportAdmin(ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin):
    """Who downloaded which members, when, and with which contact details."""

    list_display = [
        "exported_at",
        "exported_by",
        "kind",
        "exported_link",
        "channels_display",
        "rows",
        "finished",
    ]
    list_select_related = ["exported_by", "content_type"]
    list_filter = [("exported_at", admin.DateFieldListFilter), KindFilter]
    search_fields = ["label", "exported_by__username"]
    list_per_page = 100
    object_select_related = ("exported_by", "content_type")
    fields = [
        "exported_at",
        "exported_by_name",
        "kind",
        "exported_link",
        "channels_display",
        "rows",
        "finished_at",
    ]
    readonly_fields = fields

    # As text: a link would lead marketers to the user pages they may not open.
    @admin.display(description=_("exported by"))
    def exported_by_name(self, obj: MemberExport) -> str:
        return obj.exported_by.get_username()

    @admin.display(description=_("kind"), ordering="content_type")
    def kind(self, obj: MemberExport) -> str:
        return kind_label(obj.content_type)

    @admin.display(description=_("exported"), ordering="label")
    def exported_link(self, obj: MemberExport) -> str:
        try:
            url = reverse(
                f"admin:{obj.content_type.app_label}_{obj.content_type.model}_change",
                args=[obj.object_id],
            )
        except NoReverseMatch:
            return obj.label
        return format_html('<a href="{}">{}</a>', url, obj.label)

    @admin.display(description=_("contact details of"))
    def channels_display(self, obj: MemberExport) -> str:
        return ", ".join(str(Channel(channel).label) for channel in obj.channels)

    @admin.display(description=_("finished"), boolean=True, ordering="finished_at")
    def finished(self, obj: MemberExport) -> bool:
        return obj.finished_at is not None
