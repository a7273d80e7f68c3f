"""Charts for staff pages: one library (Chart.js, a static file) and one palette.

A view builds a chart as a plain dict with `chart_spec()` and hands it to the template
`admin/includes/chart.html`, which writes the dict with `json_script` and a `<canvas>`;
`crm/static/crm/charts.js` draws it. The table next to a chart stays the accessible and
printable form of the same figures, so a chart never carries a number alone.

The palette gives each *meaning* one colour for the whole product: a channel is always
the same colour, "this period" and "the period before" always the same pair, a gain
always green and a loss always red. Segments and personas get a colour from their id, so
one persona keeps its colour on every page that shows it.
"""

from collections.abc import Sequence
from typing import Any

# Colour-blind-safe qualitative palette (Okabe and Ito) for named things.
CATEGORICAL = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
NEUTRAL = "#8A8A8A"  # "none", "unknown", "no persona"

CHANNEL_COLOURS = {
    "email": "#0072B2",
    "sms": "#009E73",
    "push": "#CC79A7",
    "social_ads": "#56B4E9",
    "post": "#E69F00",
    "store": "#D55E00",
    "online": "#56B4E9",
    "phone": "#F0E442",
}
PERIOD_COLOURS = {"current": "#0072B2", "previous": "#B8C7D6"}
SIGN_COLOURS = {"gain": "#009E73", "loss": "#D55E00"}


def colour_for_id(object_id: int | None) -> str:
    """The colour of a segment or persona, the same on every page; None is neutral."""
    if object_id is None:
        return NEUTRAL
    return CATEGORICAL[object_id % len(CATEGORICAL)]


def channel_colour(channel: str) -> str:
    return CHANNEL_COLOURS.get(channel, NEUTRAL)


def dataset(
    label: str, values: Sequence[float | int | None], *, colour: str | Sequence[str]
) -> dict[str, Any]:
    """One series; `colour` is one colour or one per value (a bar per persona)."""
    return {
        "label": label,
        "data": [None if value is None else float(value) for value in values],
        "backgroundColor": colour if isinstance(colour, str) else list(colour),
        "borderColor": colour if isinstance(colour, str) else list(colour),
    }


def chart_spec(
    element_id: str,
    *,
    kind: str,
    title: str,
    labels: Sequence[str],
    datasets: Sequence[dict[str, Any]],
    unit: str = "",
    horizontal: bool = False,
    stacked: bool = False,
    value_max: float | None = None,
    note: str = "",
) -> dict[str, Any]:
    """A chart as data: `kind` is a Chart.js type ("bar", "line", "doughnut").

    `unit` is appended to values in tooltips and on the value axis ("EUR", "%"); `note`
    is a sentence shown under the chart (for example "History starts on 6 Dec 2026").
    `value_max` fixes the end of the value axis (100 for shares that add up to 100 %).
    """
    if kind not in {"bar", "line", "doughnut"}:
        raise ValueError(f"Unknown chart kind {kind!r}: use bar, line or doughnut.")
    return {
        "id": element_id,
        "kind": kind,
        "title": title,
        "labels": [str(label) for label in labels],
        "datasets": list(datasets),
        "unit": unit,
        "horizontal": horizontal,
        "stacked": stacked,
        "value_max": value_max,
        "note": note,
    }
