"""Webhook subscriptions and their delivery log, for the staff who look after the
integrations: who receives what, whether it arrives, and the secret to check it."""

from django import forms
from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from crm import hooks
from crm.webhooks.models import WebhookDelivery, WebhookEvent, WebhookSubscription
from crm.webhooks.services import (
    SUBSCRIPTION_FIELDS,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_secret_rotate,
    webhook_subscription_update,
)

from .base import (
    CountedDeleteMixin,
    ReadOnlyAdminMixin,
    ServiceFormMixin,
    apply_each,
    instance_adopt,
)


def _deliveries_counted(status: str) -> Coalesce:
    """A subscription's deliveries in `status`, counted over the rows in that status
    only (few, and found by the status index) rather than its whole log."""
    counted = (
        WebhookDelivery.objects.filter(subscription=OuterRef("pk"), status=status)
        .order_by()
        .values("subscription")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


class WebhookSubscriptionForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        label=_("events"),
        choices=WebhookEvent.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    segments = forms.MultipleChoiceField(
        label=_("segments"),
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 8}),
        help_text=_(
            "Segment events only for these segments; none selected means every segment."
        ),
    )

    class Meta:
        model = WebhookSubscription
        fields = list(SUBSCRIPTION_FIELDS)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Slugs a subscription names but that no longer exist stay choosable, so
        # saving the form does not silently drop them.
        slugs = {slug for slugs in hooks.webhook_segment_slugs.send() for slug in slugs}
        slugs.update(self.initial.get("segments") or [])
        self.fields["segments"].choices = [(slug, slug) for slug in sorted(slugs)]


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(CountedDeleteMixin, ServiceFormMixin, admin.ModelAdmin):
    form = WebhookSubscriptionForm
    list_display = [
        "name",
        "url",
        "events_shown",
        "is_active",
        "consent_channel",
        "pending",
        "failed",
        "created_at",
    ]
    list_filter = ["is_active", "consent_channel"]
    search_fields = ["name", "url"]
    readonly_fields = ["secret", "owner", "created_at", "deliveries_link"]
    # The delivery log goes with its subscription (webhook_subscription_delete).
    deleted_log = (WebhookDelivery, "subscription")
    actions = ["secret_rotate", "deactivate", "activate"]

    def get_queryset(self, request: HttpRequest):
        return (
            super()
            .get_queryset(request)
            .select_related("owner")
            .annotate(
                pending_count=_deliveries_counted(WebhookDelivery.Status.PENDING),
                failed_count=_deliveries_counted(WebhookDelivery.Status.FAILED),
            )
        )

    def get_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return list(SUBSCRIPTION_FIELDS)
        return [*SUBSCRIPTION_FIELDS, *self.get_readonly_fields(request, obj)]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        if obj is None:
            return []
        if self.has_change_permission(request, obj):
            return self.readonly_fields
        # The secret signs deliveries: whoever reads it can forge one.
        return [name for name in self.readonly_fields if name != "secret"]

    @admin.display(description=_("events"))
    def events_shown(self, obj: WebhookSubscription) -> str:
        return ", ".join(obj.events)

    @admin.display(description=_("waiting"), ordering="pending_count")
    def pending(self, obj: WebhookSubscription) -> int:
        return obj.pending_count

    @admin.display(description=_("gave up"), ordering="failed_count")
    def failed(self, obj: WebhookSubscription) -> int:
        return obj.failed_count

    @admin.display(description=_("deliveries"))
    def deliveries_link(self, obj: WebhookSubscription) -> str:
        url = reverse("admin:crm_webhookdelivery_changelist")
        return format_html(
            '<a href="{}?subscription__id__exact={}">{}</a>',
            url,
            obj.pk,
            _("The delivery log of this subscription"),
        )

    def save_model(self, request: HttpRequest, obj, form, change) -> None:
        data = {name: form.cleaned_data[name] for name in SUBSCRIPTION_FIELDS}
        if not change:
            instance_adopt(obj, webhook_subscription_create(**data, owner=request.user))
            return
        changed = {name: data[name] for name in form.changed_data if name in data}
        if changed:
            # The form has already set the new values on obj; the service checks
            # and saves them.
            webhook_subscription_update(subscription=obj, **changed)

    def delete_model(self, request: HttpRequest, obj) -> None:
        webhook_subscription_delete(subscription=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for subscription in queryset:
            webhook_subscription_delete(subscription=subscription)

    @admin.action(
        description=_("Give the selected subscriptions a new secret"),
        permissions=["change"],
    )
    def secret_rotate(self, request: HttpRequest, queryset) -> None:
        apply_each(
            self,
            request,
            queryset,
            lambda s: webhook_subscription_secret_rotate(subscription=s),
            done_message=_(
                "%(count)d subscriptions have a new secret; give it to their "
                "receivers, which must check signatures against it from now on."
            ),
        )

    def _active_set(self, request: HttpRequest, queryset, active: bool, done: str):
        apply_each(
            self,
            request,
            queryset,
            lambda s: webhook_subscription_update(subscription=s, is_active=active),
            done_message=done,
        )

    @admin.action(
        description=_("Pause the selected subscriptions"), permissions=["change"]
    )
    def deactivate(self, request: HttpRequest, queryset) -> None:
        self._active_set(request, queryset, False, _("%(count)d subscriptions paused."))

    @admin.action(
        description=_("Resume the selected subscriptions"), permissions=["change"]
    )
    def activate(self, request: HttpRequest, queryset) -> None:
        self._active_set(request, queryset, True, _("%(count)d subscriptions resumed."))


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "subscription",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "delivered_at",
        "next_attempt_at",
    ]
    list_filter = ["status", "event", "subscription"]
    list_select_related = ["subscription"]
    show_full_result_count = False
    fields = [
        "subscription",
        "event",
        "status",
        "attempts",
        "last_status_code",
        "delivered_at",
        "next_attempt_at",
        "created_at",
        "attempt_log",
        "body",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).select_related("subscription")
