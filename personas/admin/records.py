"""Rows only the engine writes: persona assignments and their history."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from crm.admin.base import ObjectSelectRelatedMixin, ReadOnlyAdminMixin

from ..models import PersonaAssignment, PersonaChange


@admin.register(PersonaAssignment)
class PersonaAssignmentAdmin(
    ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin
):
    list_display = ["customer", "persona", "assigned_at", "contact"]
    list_select_related = ["customer", "persona", "contact"]
    list_filter = ["persona"]
    search_fields = ["=customer__email", "customer__last_name"]
    search_help_text = _("The customer's exact email address, or part of the name.")
    show_full_result_count = False
    list_per_page = 100
    ordering = ["-assigned_at"]
    object_select_related = ("customer", "persona", "contact")
    fields = ["customer", "persona", "assigned_at", "contact"]


@admin.register(PersonaChange)
class PersonaChangeAdmin(
    ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin
):
    list_display = ["occurred_at", "customer", "from_persona", "to_persona", "cause"]
    list_select_related = ["customer", "from_persona", "to_persona"]
    list_filter = ["cause", "to_persona"]
    search_fields = ["=customer__email"]
    search_help_text = _("The customer's exact email address.")
    show_full_result_count = False
    list_per_page = 100
    ordering = ["-id"]
    object_select_related = ("customer", "from_persona", "to_persona", "contact")
    fields = [
        "customer",
        "from_persona",
        "to_persona",
        "cause",
        "occurred_at",
        "contact",
    ]
