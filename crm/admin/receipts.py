from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_permission_codename
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from crm.models import LoyaltyTransaction, Receipt, ReceiptLine
from crm.services import receipt_void

from ..formats import money
from .base import (
    ObjectSelectRelatedMixin,
    ReadOnlyAdminMixin,
    action_with_form,
    apply_each,
)


class ReceiptVoidForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=200,
        help_text=_("Kept on each receipt and on the customer's contact history."),
    )


class ReceiptPartInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Rows written with their receipt, shown to whoever may see the receipt."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        opts = self.parent_model._meta
        return any(
            request.user.has_perm(
                f"{opts.app_label}.{get_permission_codename(action, opts)}"
            )
            for action in ("view", "change")
        )


class ReceiptLineInline(ReceiptPartInline):
    model = ReceiptLine
    fields = [
        "product",
        "quantity",
        "unit_price_display",
        "discount_display",
        "line_total_display",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("product", "receipt")

    @admin.display(description=_("unit price"))
    def unit_price_display(self, obj: ReceiptLine) -> str:
        return money(obj.unit_price, obj.receipt.currency)

    @admin.display(description=_("discount"))
    def discount_display(self, obj: ReceiptLine) -> str:
        return money(obj.discount, obj.receipt.currency)

    @admin.display(description=_("line total"))
    def line_total_display(self, obj: ReceiptLine) -> str:
        return money(obj.line_total, obj.receipt.currency)


class ReceiptLoyaltyTransactionInline(ReceiptPartInline):
    model = LoyaltyTransaction
    fields = ["card", "kind", "points", "note", "created_at"]
    readonly_fields = fields
    verbose_name_plural = _("loyalty points")

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("card")


@admin.register(Receipt)
class ReceiptAdmin(ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin):
    """Receipts are recorded at the desk, by the API or by an import; here they are
    read, and voided through receipt_void."""

    list_display = [
        "number",
        "purchased_at",
        "store",
        "customer",
        "total_display",
        "payment_method",
        "points_earned",
        "points_redeemed",
        "status",
    ]
    list_select_related = ["store", "customer"]
    list_filter = ["status", "channel", "payment_method", "store", "email_status"]
    search_fields = ["=number", "=customer__email", "=loyalty_card__number"]
    search_help_text = _(
        "A receipt number, the customer's exact email address or a card number."
    )
    date_hierarchy = "purchased_at"
    show_full_result_count = False
    list_per_page = 50
    actions = ["void_receipts"]
    inlines = [ReceiptLineInline, ReceiptLoyaltyTransactionInline]
    object_select_related = ("store", "clerk", "customer", "loyalty_card")
    readonly_fields = [
        "total_display",
        "redeemed_value_display",
        "amount_paid_display",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    ("number", "status"),
                    ("store", "clerk"),
                    ("channel", "purchased_at"),
                    ("customer", "loyalty_card"),
                ]
            },
        ),
        (
            _("Payment"),
            {
                "fields": [
                    ("total_display", "redeemed_value_display", "amount_paid_display"),
                    "payment_method",
                    ("points_earned", "points_redeemed"),
                ]
            },
        ),
        (_("Void"), {"fields": ["voided_at", "void_reason"]}),
        (
            _("Record"),
            {
                "fields": [
                    ("email_status", "emailed_at"),
                    "idempotency_key",
                    "created_at",
                ]
            },
        ),
    ]

    @admin.display(description=_("total"), ordering="total")
    def total_display(self, obj: Receipt) -> str:
        return money(obj.total, obj.currency)

    @admin.display(description=_("paid with points"))
    def redeemed_value_display(self, obj: Receipt) -> str:
        return money(obj.redeemed_value, obj.currency)

    @admin.display(description=_("amount paid"))
    def amount_paid_display(self, obj: Receipt) -> str:
        return money(obj.amount_paid, obj.currency)

    def has_void_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("crm.change_receipt")

    @admin.action(description=_("Void selected receipts"), permissions=["void"])
    def void_receipts(self, request: HttpRequest, queryset):
        def apply(data: dict) -> None:
            completed = []
            for receipt in queryset.order_by("pk"):
                if receipt.status == Receipt.Status.VOIDED:
                    self.message_user(
                        request,
                        _("%(receipt)s was already voided.") % {"receipt": receipt},
                        messages.WARNING,
                    )
                else:
                    completed.append(receipt)
            apply_each(
                self,
                request,
                completed,
                lambda receipt: receipt_void(
                    receipt=receipt, reason=data["reason"], by=request.user
                ),
                done_message=_("Voided %(count)d receipt(s)."),
            )

        return action_with_form(
            self,
            request,
            queryset,
            form_class=ReceiptVoidForm,
            title=_("Void receipts"),
            intro=_(
                "Voiding takes back each sale's loyalty points and returns its items "
                "to stock; the receipts stay on record as voided."
            ),
            submit_label=_("Void receipts"),
            apply=apply,
        )
