"""What campaigns do when the apps below them report news (registered in
CampaignsConfig.ready)."""

from django.db import transaction

from .models import Campaign, Delivery
from .tasks import triggers_consume_task


def segment_entries_greet(*, segment_ids: set[int]) -> None:
    """New members of a trigger segment: plan their messages once this commits."""
    if Campaign.objects.filter(
        kind=Campaign.Kind.TRIGGERED,
        status=Campaign.Status.ACTIVE,
        trigger_segment_id__in=segment_ids,
    ).exists():
        transaction.on_commit(triggers_consume_task.delay)


def deliveries_scrub(*, customer_id: int) -> None:
    """An erased customer: a provider's error text may quote their address."""
    Delivery.objects.filter(customer_id=customer_id).exclude(error="").update(error="")
