from django import forms
from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from crm.models import LoyaltyCard, LoyaltyTransaction
from crm.selectors import RECENT_CARD_TRANSACTIONS, loyalty_card_recent_transactions
from crm.services import (
    loyalty_card_issue,
    loyalty_card_link,
    loyalty_card_replace,
    loyalty_card_status_set,
    points_adjust,
)

from .base import (
    NoDeleteMixin,
    ObjectSelectRelatedMixin,
    ReadOnlyAdminMixin,
    ServiceFormMixin,
    action_with_form,
    apply_each,
    instance_adopt,
)


class LoyaltyCardIssueForm(forms.ModelForm):
    number = forms.CharField(
        label=_("number"),
        max_length=19,
        required=False,
        help_text=_(
            "Type or scan a pre-printed card, or leave empty for a new number."
        ),
    )

    class Meta:
        model = LoyaltyCard
        fields = ["number", "customer", "issuing_store", "tier"]


class PointsAdjustForm(forms.Form):
    points = forms.IntegerField(
        label=_("Points"), help_text=_("Positive to add points, negative to take off.")
    )
    note = forms.CharField(
        label=_("Note"),
        max_length=200,
        help_text=_("Why: kept on each card's ledger."),
    )


@admin.register(LoyaltyCard)
class LoyaltyCardAdmin(
    ServiceFormMixin, NoDeleteMixin, ObjectSelectRelatedMixin, admin.ModelAdmin
):
    list_display = [
        "number",
        "customer",
        "tier",
        "status",
        "points",
        "issued_at",
        "issuing_store",
    ]
    list_select_related = ["customer", "issuing_store"]
    list_filter = ["tier", "status", "issuing_store"]
    search_fields = ["=number", "=customer__email", "customer__last_name"]
    search_help_text = _(
        "A card number, the customer's exact email address, or part of the name."
    )
    autocomplete_fields = ["customer", "issuing_store"]
    actions = ["adjust_points", "replace", "block", "report_lost", "reactivate"]
    show_full_result_count = False
    list_per_page = 100
    object_select_related = ("customer", "issuing_store")
    add_fields = ["number", "customer", "issuing_store", "tier"]
    change_fields = [
        "number",
        "customer",
        "tier",
        "status",
        "points",
        "issued_at",
        "issuing_store",
    ]

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = LoyaltyCardIssueForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: LoyaltyCard | None = None):
        return self.add_fields if obj is None else self.change_fields

    def has_change_permission(
        self, request: HttpRequest, obj: LoyaltyCard | None = None
    ) -> bool:
        # Linking an anonymous card to a customer is the one change with a service;
        # the balance moves through the ledger ("Adjust points").
        if obj is not None and obj.customer_id is not None:
            return False
        return super().has_change_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: LoyaltyCard | None = None):
        if obj is None:
            return []
        return [name for name in self.change_fields if name != "customer"]

    def save_model(self, request: HttpRequest, obj: LoyaltyCard, form, change: bool):
        data = form.cleaned_data
        if not change:
            card = loyalty_card_issue(
                number=data["number"] or None,
                customer=data["customer"],
                store=data["issuing_store"],
                tier=data["tier"],
            )
            instance_adopt(obj, card)
        elif data.get("customer") is not None:
            loyalty_card_link(card=obj, customer=data["customer"])

    def render_change_form(
        self, request, context, add=False, change=False, form_url="", obj=None
    ):
        if obj is not None and obj.pk is not None:
            context.update(
                {
                    "recent_transactions": loyalty_card_recent_transactions(card=obj),
                    "recent_transactions_limit": RECENT_CARD_TRANSACTIONS,
                }
            )
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def has_adjust_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crm.change_loyaltycard")

    def _status_set(self, request: HttpRequest, queryset, status: str, done: str):
        apply_each(
            self,
            request,
            queryset,
            lambda card: loyalty_card_status_set(card=card, status=status),
            done_message=done,
        )

    @admin.action(
        description=_("Replace selected cards (lost or damaged)"),
        permissions=["adjust"],
    )
    def replace(self, request: HttpRequest, queryset) -> None:
        def one(card: LoyaltyCard) -> None:
            new = loyalty_card_replace(card=card)
            self.message_user(
                request,
                _("Card %(old)s is replaced by %(new)s, with its %(points)d points.")
                % {"old": card.number, "new": new.number, "points": new.points},
            )

        apply_each(
            self, request, queryset, one, done_message=_("Replaced %(count)d card(s).")
        )

    @admin.action(description=_("Block selected cards"), permissions=["adjust"])
    def block(self, request: HttpRequest, queryset) -> None:
        self._status_set(
            request,
            queryset,
            LoyaltyCard.Status.BLOCKED,
            _("Blocked %(count)d card(s); the tills refuse them."),
        )

    @admin.action(description=_("Report selected cards lost"), permissions=["adjust"])
    def report_lost(self, request: HttpRequest, queryset) -> None:
        self._status_set(
            request,
            queryset,
            LoyaltyCard.Status.LOST,
            _(
                "Reported %(count)d card(s) lost; issue new ones and move the points "
                "over with an adjustment."
            ),
        )

    @admin.action(
        description=_("Make selected cards usable again"), permissions=["adjust"]
    )
    def reactivate(self, request: HttpRequest, queryset) -> None:
        self._status_set(
            request,
            queryset,
            LoyaltyCard.Status.ACTIVE,
            _("%(count)d card(s) can be used again."),
        )

    @admin.action(
        description=_("Adjust points of selected cards"), permissions=["adjust"]
    )
    def adjust_points(self, request: HttpRequest, queryset):
        def apply(data: dict) -> None:
            apply_each(
                self,
                request,
                queryset.order_by("pk"),
                lambda card: points_adjust(
                    card=card, points=data["points"], note=data["note"]
                ),
                done_message=_("Adjusted the points of %(count)d card(s)."),
            )

        return action_with_form(
            self,
            request,
            queryset,
            form_class=PointsAdjustForm,
            title=_("Adjust points"),
            intro=_(
                "The adjustment is added to the ledger of each card below; a balance "
                "never goes below zero."
            ),
            submit_label=_("Adjust points"),
            apply=apply,
        )


@admin.register(LoyaltyTransaction)
class LoyaltyTransactionAdmin(
    ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin
):
    list_display = [
        "created_at",
        "card",
        "customer",
        "kind",
        "points",
        "receipt",
        "note",
    ]
    list_select_related = ["card", "card__customer", "receipt"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["=card__number", "=receipt__number", "=card__customer__email"]
    search_help_text = _(
        "A card number, a receipt number or the customer's exact email address."
    )
    show_full_result_count = False
    list_per_page = 100
    # Newest rows first by primary key: no index orders the whole ledger by time.
    ordering = ["-id"]
    object_select_related = ("card", "receipt")
    fields = ["card", "kind", "points", "receipt", "note", "created_at"]

    @admin.display(description=_("customer"), ordering="card__customer")
    def customer(self, obj: LoyaltyTransaction):
        return obj.card.customer
