"""Charts of the persona pages as Chart.js specs (see crm.charts).

A persona keeps its colour from `colour_for_id` on every chart, the customers matching
no persona are neutral grey, and a channel has its `channel_colour`. Money is charted
in whole currency units exactly as `money_rounded` prints it, so a bar and the table
next to it never disagree.
"""

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from crm.charts import CATEGORICAL, channel_colour, chart_spec, colour_for_id, dataset
from crm.formats import whole_units

from ..selectors import CHANNELS, Overview, PersonaFacts, age_bands, channel_label


def money_value(amount: Decimal | None) -> Decimal | None:
    """An amount as `money_rounded` shows it: whole units."""
    return None if amount is None else whole_units(amount)


def _label(facts: PersonaFacts) -> str:
    return facts.persona.name if facts.persona is not None else _("No persona")


def _colour(facts: PersonaFacts) -> str:
    return colour_for_id(facts.persona.pk if facts.persona is not None else None)


def _bars(
    element_id: str,
    title: str,
    rows: Sequence[PersonaFacts],
    values: Sequence[Any],
    *,
    unit: str = "",
    note: str = "",
) -> dict[str, Any]:
    return chart_spec(
        element_id,
        kind="bar",
        title=title,
        labels=[_label(f) for f in rows],
        datasets=[dataset(title, values, colour=[_colour(f) for f in rows])],
        unit=unit,
        horizontal=True,
        note=note,
    )


def _share_bars(
    element_id: str, title: str, labels: Sequence[str], datasets: list[dict[str, Any]]
) -> dict[str, Any]:
    """One bar per label split into its series' shares, which add up to 100 %."""
    return chart_spec(
        element_id,
        kind="bar",
        title=title,
        labels=labels,
        datasets=datasets,
        unit="%",
        horizontal=True,
        stacked=True,
        value_max=100,
    )


def channel_mix_chart(
    element_id: str, title: str, rows: Sequence[tuple[str, dict[str, float]]]
) -> dict[str, Any]:
    """One 100% bar per row, one series per sales channel in its own colour."""
    return _share_bars(
        element_id,
        title,
        [label for label, _shares in rows],
        [
            dataset(
                channel_label(channel),
                [round(shares.get(channel, 0) * 100, 1) for _l, shares in rows],
                colour=channel_colour(channel),
            )
            for channel in CHANNELS
        ],
    )


def age_chart(
    element_id: str, title: str, rows: Sequence[tuple[str, dict[str, int]]]
) -> dict[str, Any]:
    """One 100% bar per row, one series per age band, youngest first."""
    bands = list(dict.fromkeys(band for _label, counts in rows for band in counts))
    totals = [sum(counts.values()) or 1 for _label, counts in rows]
    return _share_bars(
        element_id,
        title,
        [label for label, _counts in rows],
        [
            dataset(
                band,
                [
                    round(counts.get(band, 0) / total * 100, 1)
                    for (_label, counts), total in zip(rows, totals, strict=True)
                ],
                colour=CATEGORICAL[index % len(CATEGORICAL)],
            )
            for index, band in enumerate(bands)
        ],
    )


def overview_charts(overview: Overview) -> list[dict[str, Any]]:
    """The overview's charts: one bar per persona with figures, then no persona."""
    facts = [f for f in overview.facts if f.figures is not None]
    if not facts:
        return []
    rows = [*facts, *([overview.no_persona] if overview.no_persona else [])]
    currency = settings.LOYALIST_CURRENCY
    return [
        _bars(
            "persona-chart-share",
            _("Share of customers"),
            rows,
            [round(f.share * 100) for f in rows],
            unit="%",
        ),
        _bars(
            "persona-chart-revenue",
            _("Revenue (12 months)"),
            rows,
            [money_value(f.revenue) for f in rows],
            unit=currency,
        ),
        _bars(
            "persona-chart-margin",
            _("Margin (12 months)"),
            rows,
            [money_value(f.margin) for f in rows],
            unit=currency,
        ),
        _bars(
            "persona-chart-aov",
            _("Average order value"),
            rows,
            [money_value(f.aov) for f in rows],
            unit=currency,
        ),
        _bars(
            "persona-chart-frequency",
            _("Orders per customer per month"),
            rows,
            [
                None if f.orders_per_month is None else round(f.orders_per_month, 2)
                for f in rows
            ],
        ),
        _bars(
            "persona-chart-roi",
            _("Net return per customer (year)"),
            rows,
            [money_value(f.roi_per_customer) for f in rows],
            unit=currency,
            note=_("Margin minus service and campaign costs, per customer."),
        ),
        channel_mix_chart(
            "persona-chart-channels",
            _("Channel mix (orders)"),
            [(_label(f), f.channel_shares) for f in rows],
        ),
        age_chart(
            "persona-chart-ages",
            _("Age distribution"),
            [(_label(f), age_bands(f.figures)) for f in facts],
        ),
    ]


def card_charts(card: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The card's channel-mix and age charts (None without figures)."""
    facts: PersonaFacts = card["facts"]
    channels = (
        channel_mix_chart(
            "persona-card-channels",
            _("Channel mix (orders)"),
            [(_("Orders"), facts.channel_shares)],
        )
        if facts.channel_shares
        else None
    )
    ages = (
        chart_spec(
            "persona-card-ages",
            kind="bar",
            title=_("Customers per age band"),
            labels=[bar["label"] for bar in card["ages"]],
            datasets=[
                dataset(
                    _("Customers"),
                    [bar["count"] for bar in card["ages"]],
                    colour=colour_for_id(facts.persona.pk),
                )
            ],
        )
        if card["ages"] and any(bar["count"] for bar in card["ages"])
        else None
    )
    return {"channel_chart": channels, "age_chart": ages}
