"""Server-side SVG charts for the persona pages: no JavaScript library."""

from collections.abc import Sequence
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from crm.dashboard import money_rounded

from ..selectors import CHANNELS, Overview, age_bands

WIDTH = 440
ROW = 22
LABEL = 110
VALUE = 120
COLOURS = ("#417690", "#79aec8", "#f5dd5d", "#ba2121", "#5b8a3a", "#8e6bbf")
CHANNEL_COLOURS = {"store": "#417690", "online": "#79aec8", "phone": "#f5dd5d"}


def bar_chart(title: str, rows: Sequence[tuple[str, float, str]]) -> SafeString:
    """Horizontal bars, one per (label, value, text); negative values go left."""
    height = ROW * len(rows) + 8
    bars_width = WIDTH - LABEL - VALUE
    low = min([0.0, *(value for _l, value, _t in rows)])
    high = max([0.0, *(value for _l, value, _t in rows)])
    span = (high - low) or 1.0
    zero = LABEL + (-low) / span * bars_width
    parts = [
        f'<svg class="persona-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" width="{WIDTH}" height="{height}">',
        f'<line x1="{zero:.1f}" y1="0" x2="{zero:.1f}" y2="{height}" stroke="#999"/>',
    ]
    for index, (label, value, text) in enumerate(rows):
        y = 4 + index * ROW
        width = abs(value) / span * bars_width
        x = zero if value >= 0 else zero - width
        colour = "#ba2121" if value < 0 else COLOURS[index % len(COLOURS)]
        parts.append(
            f'<text x="{LABEL - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 6}" '
            f'fill="{colour}"><title>{escape(label)}: {escape(text)}</title></rect>'
            f'<text x="{WIDTH - VALUE + 6}" y="{y + 14}">{escape(text)}</text>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text is escaped above


def stacked_chart(
    title: str, rows: Sequence[tuple[str, dict[str, float]]]
) -> SafeString:
    """One 100% bar per row, split by key (channel or age band)."""
    keys = list(dict.fromkeys(k for _label, shares in rows for k in shares))
    height = ROW * len(rows) + 30
    bars_width = WIDTH - LABEL - 10
    parts = [
        f'<svg class="persona-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" width="{WIDTH}" height="{height}">'
    ]
    for index, (label, shares) in enumerate(rows):
        y = 4 + index * ROW
        total = sum(shares.values()) or 1.0
        x = float(LABEL)
        parts.append(
            f'<text x="{LABEL - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(label)}</text>"
        )
        for position, key in enumerate(keys):
            width = shares.get(key, 0) / total * bars_width
            if width <= 0:
                continue
            colour = CHANNEL_COLOURS.get(key, COLOURS[position % len(COLOURS)])
            percent = round(shares.get(key, 0) / total * 100)
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="{ROW - 6}" '
                f'fill="{colour}"><title>{escape(label)}, {escape(key)}: '
                f"{percent}%</title></rect>"
            )
            if width > 28:
                parts.append(
                    f'<text x="{x + 3:.1f}" y="{y + 13}" class="in-bar">'
                    f"{percent}%</text>"
                )
            x += width
    legend_y = height - 8
    x = float(LABEL)
    for position, key in enumerate(keys):
        colour = CHANNEL_COLOURS.get(key, COLOURS[position % len(COLOURS)])
        parts.append(
            f'<rect x="{x:.1f}" y="{legend_y - 9}" width="10" height="10" '
            f'fill="{colour}"/>'
            f'<text x="{x + 13:.1f}" y="{legend_y}">{escape(key)}</text>'
        )
        x += 16 + 7 * len(key) + 8
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text is escaped above


def overview_charts(overview: Overview) -> list[dict[str, Any]]:
    """The overview's charts: one row per persona with figures."""
    facts = [f for f in overview.facts if f.figures is not None]
    if not facts:
        return []
    name = [f.persona.name for f in facts]
    charts = [
        (
            _("Share of customers"),
            bar_chart(
                _("Share of customers"),
                [
                    (n, f.share, f"{f.share:.0%}")
                    for n, f in zip(name, facts, strict=True)
                ],
            ),
        ),
        (
            _("Revenue (12 months)"),
            bar_chart(
                _("Revenue"),
                [
                    (n, float(f.revenue), money_rounded(f.revenue))
                    for n, f in zip(name, facts, strict=True)
                ],
            ),
        ),
        (
            _("Margin (12 months)"),
            bar_chart(
                _("Margin"),
                [
                    (n, float(f.margin), money_rounded(f.margin))
                    for n, f in zip(name, facts, strict=True)
                ],
            ),
        ),
        (
            _("Average order value"),
            bar_chart(
                _("Average order value"),
                [
                    (n, float(f.aov or 0), money_rounded(f.aov))
                    for n, f in zip(name, facts, strict=True)
                ],
            ),
        ),
        (
            _("Orders per customer per month"),
            bar_chart(
                _("Orders per month"),
                [
                    (n, f.orders_per_month or 0, f"{f.orders_per_month or 0:.2f}")
                    for n, f in zip(name, facts, strict=True)
                ],
            ),
        ),
        (
            _("Return on investment estimate (year)"),
            bar_chart(
                _("ROI"),
                [
                    (n, float(f.roi), money_rounded(f.roi))
                    for n, f in zip(name, facts, strict=True)
                ],
            ),
        ),
        (
            _("Channel mix (orders)"),
            stacked_chart(
                _("Channel mix"),
                [
                    (n, {c: f.channel_shares.get(c, 0) for c in CHANNELS})
                    for n, f in zip(name, facts, strict=True)
                ],
            ),
        ),
        (
            _("Age distribution"),
            stacked_chart(
                _("Ages"),
                [(n, age_bands(f.figures)) for n, f in zip(name, facts, strict=True)],
            ),
        ),
    ]
    return [{"title": title, "svg": svg} for title, svg in charts]
