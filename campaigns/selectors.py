"""Reads for the campaign pages: campaigns with their delivery counts."""

from django.db.models import Count, Prefetch, Q, QuerySet

from personas.models import Persona
from segments.models import Segment

from .models import Campaign, CampaignChange, Delivery


def campaign_list() -> QuerySet[Campaign]:
    """Campaigns with their audience: three prefetches of names, whatever the page
    size. `campaigns_delivery_counts()` adds the counts for a page."""
    names = ("id", "name", "slug")
    return Campaign.objects.select_related("trigger_segment").prefetch_related(
        Prefetch("include_segments", Segment.objects.only(*names)),
        Prefetch("include_personas", Persona.objects.only(*names)),
        Prefetch("exclude_segments", Segment.objects.only(*names)),
    )


def _status_counts() -> dict[str, Count]:
    return {
        status: Count("id", filter=Q(status=status))
        for status in Delivery.Status.values
    }


def campaigns_delivery_counts(*, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
    """Per campaign, its deliveries per status (every status, 0 when none).

    One GROUP BY over the given campaigns' deliveries: a page of the list costs one
    query, and counting the list itself never joins the deliveries.
    """
    rows = (
        Delivery.objects.filter(campaign_id__in=campaign_ids)
        .order_by()
        .values("campaign_id")
        .annotate(**_status_counts())
    )
    counts = {
        campaign_id: dict.fromkeys(Delivery.Status.values, 0)
        for campaign_id in campaign_ids
    }
    for row in rows:
        counts[row["campaign_id"]] = {
            status: row[status] for status in Delivery.Status.values
        }
    return counts


def campaign_delivery_counts(*, campaign: Campaign) -> dict[str, int]:
    """The campaign's deliveries per status, every status present (0 when none)."""
    counts = Delivery.objects.filter(campaign=campaign).aggregate(**_status_counts())
    return {status: counts[status] or 0 for status in Delivery.Status.values}


def campaign_change_list(*, campaign: Campaign) -> QuerySet[CampaignChange]:
    return campaign.changes.select_related("changed_by").order_by("-changed_at", "-id")
