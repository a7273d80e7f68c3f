"""Reads of the campaigns app, one per use case."""

from django.db.models import Count, Prefetch, QuerySet

from .models import Campaign, Delivery, Message


def campaign_list() -> QuerySet[Campaign]:
    """Campaigns with what their API and admin rows show, in a fixed number of
    queries however many there are."""
    return Campaign.objects.select_related(
        "trigger_segment", "created_by"
    ).prefetch_related(
        "include_segments",
        "include_personas",
        "exclude_segments",
        Prefetch(
            "messages", queryset=Message.objects.select_related("segment", "persona")
        ),
    )


def delivery_counts(*, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Deliveries per status of each campaign, every status present (zero when
    none), in one aggregate query."""
    counts = {pk: dict.fromkeys(Delivery.Status.values, 0) for pk in campaign_ids}
    rows = (
        Delivery.objects.filter(campaign_id__in=campaign_ids)
        .order_by()
        .values_list("campaign_id", "status")
        .annotate(n=Count("id"))
    )
    for campaign_id, status, n in rows:
        counts[campaign_id][status] = n
    return counts


def campaign_delivery_list(*, campaign: Campaign) -> QuerySet[Delivery]:
    return campaign.deliveries.select_related("message")
