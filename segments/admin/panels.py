"""Read-only pieces of the segment pages: the size chart and the customer's segments."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from crm.models import Customer

from ..dashboard import RfmFrequencyFilter, RfmRecencyFilter
from ..models import Segment, SegmentSizeSnapshot
from ..selectors import customer_segment_list

CHART_DAYS = 365
CHART_WIDTH = 600
CHART_HEIGHT = 120
CHART_PADDING = 6


def segment_min_size() -> int:
    """Segments smaller than this are flagged: too narrow to be worth a campaign."""
    return getattr(settings, "LOYALIST_SEGMENT_MIN_SIZE", 50)


def size_chart(snapshots: Sequence[SegmentSizeSnapshot]) -> dict[str, Any] | None:
    """Coordinates of a polyline of daily sizes, for an inline SVG."""
    if not snapshots:
        return None
    first, last = snapshots[0].date, snapshots[-1].date
    span = max((last - first).days, 1)
    top = max(snapshot.size for snapshot in snapshots) or 1
    inner_width = CHART_WIDTH - 2 * CHART_PADDING
    inner_height = CHART_HEIGHT - 2 * CHART_PADDING
    points = [
        (
            CHART_PADDING + (snapshot.date - first).days / span * inner_width,
            CHART_HEIGHT - CHART_PADDING - snapshot.size / top * inner_height,
        )
        for snapshot in snapshots
    ]
    return {
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in points),
        "last_x": f"{points[-1][0]:.1f}",
        "last_y": f"{points[-1][1]:.1f}",
        "first_date": first,
        "last_date": last,
        "max_size": top,
        "latest_size": snapshots[-1].size,
        "days": len(snapshots),
    }


def segment_size_chart(segment: Segment) -> dict[str, Any] | None:
    since = timezone.localdate() - timedelta(days=CHART_DAYS)
    return size_chart(list(segment.size_snapshots.filter(date__gte=since)))


def customer_segments_panel(
    *, request: HttpRequest, customer: Customer
) -> SafeString | None:
    """`customer_admin_panels` receiver: the segments panel, for who may see it."""
    if not request.user.has_perm("segments.view_segment"):
        return None
    return customer_segments_html(customer)


def customer_segments_html(customer: Customer) -> SafeString:
    """The customer's segments, each with a link to why, for the customer's page.

    Active segments the customer is not in are listed too, so "why is she not a
    champion?" is one click away.
    """
    memberships = list(customer_segment_list(customer=customer))
    member_ids = {segment.pk for segment in memberships}
    others = [
        segment
        for segment in Segment.objects.filter(is_active=True).only("pk", "name", "slug")
        if segment.pk not in member_ids
    ]
    return render_to_string(
        "admin/segments/customer_segments.html",
        {"customer": customer, "memberships": memberships, "others": others},
    )


class SegmentFilter(admin.SimpleListFilter):
    """Members of an active segment; the segment page links here."""

    title = _("segment")
    parameter_name = "segment"

    def lookups(self, request, model_admin):
        return list(
            Segment.objects.filter(is_active=True)
            .order_by("name")
            .values_list("pk", "name")
        )

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            segment_id = int(self.value())
        except ValueError:
            return queryset.none()
        return queryset.filter(segment_state__segment_ids__includes=segment_id)


def customer_list_filters(*, request: HttpRequest) -> list[type[admin.ListFilter]]:
    """`customer_admin_list_filters` receiver: members of a segment, and the RFM
    scores the dashboard's grid links to."""
    return [SegmentFilter, RfmRecencyFilter, RfmFrequencyFilter]
