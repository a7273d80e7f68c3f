"""The segment engine's cards on the staff home page: sizes, movements and RFM.

Registered as a `crm.hooks.dashboard_panels` receiver. Figures are whole-base
aggregates (a query or two per card) kept in the cache by `crm.dashboard`.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from crm.charts import chart_spec, colour_for_id, dataset
from crm.dashboard import figures_cached, percentage_change
from crm.formats import change_text, money_rounded
from crm.models import Customer

from .fields import FIELDS, Context
from .models import Segment, SegmentEvent, SegmentSizeSnapshot
from .services.rfm import rfm_thresholds_latest

TREND_DAYS = 30
MOVEMENT_DAYS = 7
# Segments shown in the size table and chart, largest first; the segment list has
# the rest.
SEGMENTS_SHOWN = 10
MOVEMENTS_SHOWN = 8
SCORES = (5, 4, 3, 2, 1)


@dataclass
class SegmentTrend:
    pk: int
    name: str
    size: int
    entered: int
    exited: int
    # Size on each of the last TREND_DAYS days that has a snapshot.
    history: dict[date, int] = field(default_factory=dict)
    week_ago: int | None = None
    month_ago: int | None = None

    @property
    def net(self) -> int:
        return self.entered - self.exited


@dataclass
class SegmentFigures:
    segments: list[SegmentTrend]
    history_starts: date | None
    today: date


def _events_count(kind: str, since: datetime) -> Coalesce:
    # One index range scan of (segment, -occurred_at) per segment, rather than a
    # pass over the whole history.
    counted = (
        SegmentEvent.objects.filter(
            segment_id=OuterRef("pk"), kind=kind, occurred_at__gte=since
        )
        .order_by()
        .values("segment_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def segment_figures(*, now: datetime) -> SegmentFigures:
    """Active segments with their size, size history and last week's movements."""
    today = timezone.localdate(now)
    since = now - timedelta(days=MOVEMENT_DAYS)
    segments = {
        row["pk"]: SegmentTrend(**row)
        for row in Segment.objects.filter(is_active=True)
        .annotate(
            entered=_events_count(SegmentEvent.Kind.ENTERED, since),
            exited=_events_count(SegmentEvent.Kind.EXITED, since),
        )
        .order_by("-size", "name")
        .values("pk", "name", "size", "entered", "exited")
    }
    history_starts = None
    for segment_id, day, size in SegmentSizeSnapshot.objects.filter(
        segment_id__in=list(segments), date__gte=today - timedelta(days=TREND_DAYS)
    ).values_list("segment_id", "date", "size"):
        segments[segment_id].history[day] = size
        history_starts = day if history_starts is None else min(history_starts, day)
    for trend in segments.values():
        trend.week_ago = trend.history.get(today - timedelta(days=MOVEMENT_DAYS))
        trend.month_ago = trend.history.get(today - timedelta(days=TREND_DAYS))
    return SegmentFigures(
        segments=list(segments.values()), history_starts=history_starts, today=today
    )


@dataclass
class RfmGrid:
    # (recency score, frequency score) -> (customers, lifetime revenue)
    cells: dict[tuple[int, int], tuple[int, Decimal]]
    thresholds_at: datetime | None
    buyers: int = 0


def rfm_context(*, now: datetime) -> Context | None:
    """A compile context with the latest stored thresholds, or None without any.

    The thresholds are read, never computed here: a page view must not change what
    every segment's rules version is.
    """
    thresholds = rfm_thresholds_latest()
    if thresholds is None or not thresholds.customers:
        return None
    return Context(now=now, today=timezone.localdate(now), rfm=thresholds)


def rfm_score(ctx: Context, metric: str):
    """The same score expression segment rules use (`rfm_recency` and so on)."""
    return FIELDS[f"rfm_{metric}"].value(ctx)


def rfm_grid(*, now: datetime) -> RfmGrid:
    """Customers and their lifetime revenue per recency and frequency score."""
    ctx = rfm_context(now=now)
    if ctx is None:
        return RfmGrid(cells={}, thresholds_at=None)
    rows = (
        Customer.objects.filter(stats__orders__gt=0)
        .annotate(r=rfm_score(ctx, "recency"), f=rfm_score(ctx, "frequency"))
        .order_by()
        .values("r", "f")
        .annotate(n=Count("pk"), revenue=Sum("stats__total_spent"))
    )
    cells = {
        (row["r"], row["f"]): (row["n"], row["revenue"] or Decimal("0")) for row in rows
    }
    return RfmGrid(
        cells=cells,
        thresholds_at=ctx.rfm.computed_at,
        buyers=sum(n for n, _revenue in cells.values()),
    )


def _trend_chart(figures: SegmentFigures, shown: list[SegmentTrend]):
    days = [
        figures.today - timedelta(days=offset) for offset in range(TREND_DAYS, -1, -1)
    ]
    note = ""
    if figures.history_starts and figures.history_starts > days[0]:
        note = _("Size history starts on %(date)s.") % {
            "date": figures.history_starts.strftime("%d %b %Y")
        }
    return chart_spec(
        "dashboard-segment-sizes-chart",
        kind="line",
        title=_("Segment sizes, last %(days)s days") % {"days": TREND_DAYS},
        labels=[day.strftime("%d %b") for day in days],
        datasets=[
            dataset(
                trend.name,
                [trend.history.get(day) for day in days],
                colour=colour_for_id(trend.pk),
            )
            for trend in shown
        ],
        note=note,
    )


def _rfm_rows(grid: RfmGrid, *, may_view_customers: bool) -> list[dict]:
    changelist = reverse("admin:crm_customer_changelist")
    rows = []
    for recency in SCORES:
        cells = []
        for frequency in SCORES[::-1]:
            count, revenue = grid.cells.get((recency, frequency), (0, Decimal("0")))
            link = (
                f"{changelist}?{urlencode({'rfm_r': recency, 'rfm_f': frequency})}"
                if may_view_customers and count
                else ""
            )
            cells.append(
                {
                    "count": count,
                    "revenue": money_rounded(revenue),
                    "link": link,
                    "share": count / grid.buyers if grid.buyers else 0,
                }
            )
        rows.append({"recency": recency, "cells": cells})
    return rows


def dashboard_segments_panel(*, request: HttpRequest) -> SafeString | None:
    """`dashboard_panels` receiver: segment sizes, movements and the RFM grid."""
    user = request.user
    if not user.has_perm("segments.view_segment"):
        return None
    sizes = figures_cached("segments", lambda now: segment_figures(now=now))
    grid = figures_cached("rfm", lambda now: rfm_grid(now=now))
    figures = sizes.figures
    shown = figures.segments[:SEGMENTS_SHOWN]
    movements = sorted(
        (trend for trend in figures.segments if trend.entered or trend.exited),
        key=lambda trend: (-(trend.entered + trend.exited), trend.name),
    )[:MOVEMENTS_SHOWN]
    segment_rows = [
        {
            "trend": trend,
            "link": reverse("admin:segments_segment_change", args=[trend.pk]),
            "week_change": change_text(
                percentage_change(trend.size, trend.week_ago)
                if trend.week_ago is not None
                else None
            ),
        }
        for trend in shown
    ]
    return render_to_string(
        "admin/segments/dashboard_panels.html",
        {
            "computed_at": sizes.computed_at,
            "segment_rows": segment_rows,
            "segments_total": len(figures.segments),
            "movements": movements,
            "may_view_events": user.has_perm("segments.view_segmentevent"),
            "may_view_thresholds": user.has_perm("segments.view_rfmthresholds"),
            "movement_days": MOVEMENT_DAYS,
            "trend_chart": _trend_chart(figures, shown) if shown else None,
            "grid": grid.figures,
            "grid_computed_at": grid.computed_at,
            "rfm_rows": _rfm_rows(
                grid.figures, may_view_customers=user.has_perm("crm.view_customer")
            ),
            "frequency_scores": SCORES[::-1],
        },
    )


class RfmScoreFilter(admin.SimpleListFilter):
    """Customers with one recency or frequency score, as the dashboard's RFM grid
    counts them (the scores of segment rules, with the latest thresholds)."""

    metric = ""

    def lookups(self, request, model_admin):
        return [(str(score), str(score)) for score in SCORES[::-1]]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            score = int(self.value())
        except ValueError:
            return queryset.none()
        ctx = rfm_context(now=timezone.now())
        if ctx is None:
            return queryset.none()
        name = f"rfm_{self.metric}_score"
        return queryset.alias(**{name: rfm_score(ctx, self.metric)}).filter(
            Q(**{name: score})
        )


class RfmRecencyFilter(RfmScoreFilter):
    title = gettext_lazy("RFM recency score")
    parameter_name = "rfm_r"
    metric = "recency"


class RfmFrequencyFilter(RfmScoreFilter):
    title = gettext_lazy("RFM frequency score")
    parameter_name = "rfm_f"
    metric = "frequency"
