"""Read-only pieces of the segment pages: the size chart and the customer's segments."""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.charts import chart_spec, colour_for_id, dataset
from crm.models import Customer

from ..dashboard import RfmFrequencyFilter, RfmRecencyFilter
from ..models import Segment, SegmentSizeSnapshot
from ..selectors import customer_segment_list

CHART_DAYS = 365


def segment_min_size() -> int:
    """Segments smaller than this are flagged: too narrow to be worth a campaign."""
    return getattr(settings, "LOYALIST_SEGMENT_MIN_SIZE", 50)


def size_chart(
    segment: Segment, snapshots: Sequence[SegmentSizeSnapshot]
) -> dict[str, Any] | None:
    """The segment's daily sizes: a line chart (crm.charts) and its table of figures.

    The chart has one label per calendar day from the first snapshot to the last, so
    a day without a snapshot is a gap in the line rather than a squeezed axis. With a
    single day there is nothing to draw a line through: `spec` is None and `note`
    says when the history starts.
    """
    if not snapshots:
        return None
    first, last = snapshots[0].date, snapshots[-1].date
    sizes = {snapshot.date: snapshot.size for snapshot in snapshots}
    days = [first + timedelta(days=offset) for offset in range((last - first).days + 1)]
    first_text, last_text = date_format(first, "j M Y"), date_format(last, "j M Y")
    note = ""
    spec = None
    if len(days) == 1:
        note = _("History starts on %(date)s, when the segment was first built.") % {
            "date": first_text
        }
    else:
        line = dataset(
            _("Members"),
            [sizes.get(day) for day in days],
            colour=colour_for_id(segment.pk),
        )
        spec = chart_spec(
            "segment-size-chart",
            kind="line",
            title=_("Members per day, %(first)s to %(last)s")
            % {"first": first_text, "last": last_text},
            labels=[date_format(day, "j M") for day in days],
            datasets=[line],
        )
    return {
        "spec": spec,
        "note": note,
        "rows": [(snapshot.date, snapshot.size) for snapshot in reversed(snapshots)],
        "first_date": first,
        "last_date": last,
        "max_size": max(sizes.values()),
        "latest_size": snapshots[-1].size,
    }


def segment_size_chart(segment: Segment) -> dict[str, Any] | None:
    since = timezone.localdate() - timedelta(days=CHART_DAYS)
    snapshots = segment.size_snapshots.filter(date__gte=since).order_by("date")
    return size_chart(segment, list(snapshots))


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

    title = gettext_lazy("segment")
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
