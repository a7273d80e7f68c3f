"""What the CRM admin pages share: service-backed forms and read-only ledgers."""

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.formats import localize
from django.utils.html import format_html
from django.utils.text import capfirst

# Where a service's refusal waits while the add/change form is shown again.
_SERVICE_ERROR_ATTR = "_crm_admin_service_error"
# An action's confirmation page lists this many of the selected rows.
ACTION_OBJECTS_SHOWN = 100


def local_datetime(value: datetime | None) -> str | None:
    """A timestamp the way the admin shows its own fields: local time, localised.

    Values from display methods on a change page are printed as they are, so a
    datetime would otherwise show in UTC with microseconds.
    """
    if value is None:
        return None
    return localize(timezone.template_localtime(value))


def error_messages(error: ValidationError) -> list[str]:
    """The messages of a service's ValidationError, for the admin's message list."""
    return [str(message) for message in error.messages]


def form_add_error(form: forms.BaseForm, error: ValidationError) -> None:
    """Put a service's errors on the form's fields, or above the form if it has none.

    Services key errors by their own argument names ("receipt", "lines[0].sku"); only
    the keys the form knows can sit beside a field.
    """
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        known = field in form.fields and field != NON_FIELD_ERRORS
        form.add_error(field if known else None, errors)


def instance_adopt(instance: models.Model, saved: models.Model) -> None:
    """Turn the admin's unsaved instance into the row a service has just created.

    ModelAdmin goes on using the instance it passed to save_model() for the change
    message, the log entry and the redirect, so it must carry the new row's values.
    """
    for field in saved._meta.concrete_fields:
        setattr(instance, field.attname, getattr(saved, field.attname))
    instance._state.adding = False
    instance._state.db = saved._state.db


class ServiceFormMixin:
    """Show a service's ValidationError on the add/change form instead of a 500.

    save_model() hands the validated form to a service. When the service still
    refuses (a rule only it checks, or another user got there first), the error
    leaves changeform_view's transaction, so nothing of the attempt is kept, and the
    same POST is shown again with the service's errors on the form.
    """

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            if request.method != "POST" or hasattr(request, _SERVICE_ERROR_ATTR):
                raise
            setattr(request, _SERVICE_ERROR_ATTR, error)
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        error = getattr(request, _SERVICE_ERROR_ATTR, None)
        if error is None:
            return form_class

        class RefusedForm(form_class):
            def clean(self):
                cleaned_data = super().clean()
                form_add_error(self, error)
                return cleaned_data

        return RefusedForm

    def save_related(self, request, form, formsets, change) -> None:
        # The services set many-to-many fields themselves, so form.save_m2m(), which
        # writes them directly, is skipped.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


class ReadOnlyAdminMixin:
    """For rows only services write (ledgers, statistics): look, never touch."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class NoDeleteMixin:
    """Deleting would bypass the services (and the ledgers that point at the row)."""

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class CountedDeleteMixin:
    """Deleting rows that take a large log along (a subscription's deliveries, a
    segment's history): the confirmation page names the rows and counts the log.

    Django's page lists every related row, which for a log of millions would not
    load, and asks for the permission to delete the log, which is read-only on its
    own; the service deletes it with its owner. `deleted_log` is the log's model
    and its foreign key to the rows.
    """

    deleted_log: tuple[type[models.Model], str]

    def get_deleted_objects(self, objs, request: HttpRequest):
        objs = list(objs)
        log_model, key = self.deleted_log
        logged = log_model.objects.filter(**{f"{key}__in": objs}).count()
        named = [
            format_html("{}: {}", capfirst(self.opts.verbose_name), obj) for obj in objs
        ]
        counts = {
            self.opts.verbose_name_plural: len(objs),
            log_model._meta.verbose_name_plural: logged,
        }
        return named, counts, set(), []


class ObjectSelectRelatedMixin:
    """Load the change page's object together with the relations the page shows.

    list_select_related only serves the changelist; a read-only change page shows
    each foreign key as a link, which without this costs one query per relation.
    """

    object_select_related: tuple[str, ...] = ()

    def get_object(self, request: HttpRequest, object_id, from_field=None):
        queryset = self.get_queryset(request).select_related(
            *self.object_select_related
        )
        model = queryset.model
        field = (
            model._meta.pk if from_field is None else model._meta.get_field(from_field)
        )
        try:
            object_id = field.to_python(object_id)
            return queryset.get(**{field.name: object_id})
        except (model.DoesNotExist, ValidationError, ValueError):
            return None


class ChangedFieldsSaveMixin:
    """Save only the fields the form changed, for rows that services also update.

    A plain save() writes every column as it was when the page was loaded; on a
    store that would put back an old receipt_sequence (and the tills would hand out
    receipt numbers twice), on a product an old stock level.
    """

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.save()
            return
        concrete = {field.name for field in obj._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in concrete]
        if changed:
            obj.save(update_fields=changed)


def action_with_form(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: models.QuerySet,
    *,
    form_class: type[forms.Form],
    title: str,
    intro: str,
    submit_label: str,
    apply: Callable[[dict[str, Any]], None],
) -> TemplateResponse | None:
    """Run an admin action that first asks for input on an intermediate page.

    The page posts back to the changelist with the same action and selection plus
    "apply"; when the form is valid `apply` runs and the changelist is shown again.
    """
    action = request.POST.get("action", "")
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            apply(form.cleaned_data)
            return None
    else:
        form = form_class()
    shown = list(queryset[: ACTION_OBJECTS_SHOWN + 1])
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "intro": intro,
        "submit_label": submit_label,
        "opts": modeladmin.model._meta,
        "form": form,
        "objects": shown[:ACTION_OBJECTS_SHOWN],
        "more_objects": len(shown) > ACTION_OBJECTS_SHOWN,
        "action": action,
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across", "0"),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media + form.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, "admin/crm/action_form.html", context)


def apply_each(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    objects: Iterable[models.Model],
    service: Callable[[Any], object],
    *,
    done_message: str,
) -> None:
    """Call `service` for each object; refusals become error messages, not a 500.

    Each call is its own transaction (the services are atomic), so one refused
    object does not undo the others.
    """
    done = 0
    for obj in objects:
        try:
            service(obj)
        except ValidationError as error:
            for message in error_messages(error):
                modeladmin.message_user(request, f"{obj}: {message}", messages.ERROR)
        else:
            done += 1
    if done:
        modeladmin.message_user(
            request, done_message % {"count": done}, messages.SUCCESS
        )
