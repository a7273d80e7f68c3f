"""Loyalist's admin site: Django's admin whose home page is the dashboard."""

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _

from . import hooks
from .charts import (
    PERIOD_COLOURS,
    SIGN_COLOURS,
    channel_colour,
    chart_spec,
    dataset,
)
from .dashboard import (
    ACTIVE_WINDOWS,
    REVENUE_DAYS,
    CoreFigures,
    core_figures,
    dashboard_cache_seconds,
    figures_cached,
)
from .formats import change_text, money_rounded


def core_charts(figures: CoreFigures) -> list[dict[str, Any]]:
    reach = [row for row in figures.reach if row.reachable is not None]
    return [
        chart_spec(
            "dashboard-reach-chart",
            kind="bar",
            title=_("Reachable customers per channel"),
            labels=[row.label for row in reach],
            datasets=[
                dataset(
                    _("Reachable"),
                    [row.reachable for row in reach],
                    colour=[channel_colour(row.channel) for row in reach],
                )
            ],
            horizontal=True,
        ),
        # One bar per period with the period as its label: two bars of one series
        # fill the chart, where two series of one bar each would share one slot.
        chart_spec(
            "dashboard-revenue-chart",
            kind="bar",
            title=_("Revenue, last %(days)s days against the %(days)s before")
            % {"days": REVENUE_DAYS},
            labels=[
                _("Previous %(days)s days") % {"days": REVENUE_DAYS},
                _("Last %(days)s days") % {"days": REVENUE_DAYS},
            ],
            datasets=[
                dataset(
                    _("Revenue"),
                    [figures.revenue_previous, figures.revenue_current],
                    colour=[PERIOD_COLOURS["previous"], PERIOD_COLOURS["current"]],
                )
            ],
            unit=settings.LOYALIST_CURRENCY,
            horizontal=True,
        ),
    ]


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """What the home page shows the signed-in user: the core cards if they may see
    customers, then the cards of the apps built on the core."""
    context: dict[str, Any] = {
        "dashboard_core": None,
        "dashboard_panels": [
            panel
            for panel in hooks.dashboard_panels.send(request=request)
            if panel is not None
        ],
        "dashboard_cache_minutes": dashboard_cache_seconds() // 60,
        "dashboard_sign_colours": SIGN_COLOURS,
    }
    if request.user.has_perm("crm.view_customer"):
        cached = figures_cached("core", lambda now: core_figures(now=now))
        figures = cached.figures
        context["dashboard_core"] = {
            "figures": figures,
            "computed_at": cached.computed_at,
            "active": [
                {
                    "days": days,
                    "count": figures.active[days],
                    "share": (
                        figures.active[days] / figures.customers
                        if figures.customers
                        else None
                    ),
                }
                for days in ACTIVE_WINDOWS
            ],
            "revenue_days": REVENUE_DAYS,
            "revenue_current": money_rounded(figures.revenue_current),
            "revenue_previous": money_rounded(figures.revenue_previous),
            "revenue_change": change_text(figures.revenue_change),
            "revenue_change_sign": (
                0
                if figures.revenue_change is None
                else (figures.revenue_change > 0) - (figures.revenue_change < 0)
            ),
            "charts": core_charts(figures),
        }
    context["dashboard_has_charts"] = bool(context["dashboard_core"]) or bool(
        context["dashboard_panels"]
    )
    return context


class LoyalistAdminSite(admin.AdminSite):
    site_header = "Loyalist"
    site_title = "Loyalist"
    index_template = "admin/dashboard.html"

    def index(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> TemplateResponse:
        return super().index(
            request, {**dashboard_context(request), **(extra_context or {})}
        )
