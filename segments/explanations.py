"""What an explanation says in words: a shop owner's sentence for each condition.

`segments.selectors.segment_explain` reads the customer's values in one query;
these functions only turn those values into text. Days are whole days since the
moment, counted the way the rules count them (`days_since_last_purchase`,
`within N days`), so "12 days ago" and "the rule wants within 10 days" always
agree with the rule's verdict. Money carries the shop's currency.
"""

import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from crm.formats import money

from .fields import FIELDS, Context

RFM_METRICS = ("recency", "frequency", "monetary")
RFM_LETTERS = {"recency": "R", "frequency": "F", "monetary": "M"}
SCORES = (1, 2, 3, 4, 5)

RFM_SEGMENT_NAMES = {
    "champions": gettext_lazy("champions"),
    "loyal": gettext_lazy("loyal customers"),
    "potential_loyalist": gettext_lazy("potential loyalists"),
    "new": gettext_lazy("new customers"),
    "at_risk": gettext_lazy("at risk"),
    "cant_lose": gettext_lazy("can't lose them"),
    "hibernating": gettext_lazy("hibernating"),
    "lost": gettext_lazy("lost"),
}
# What each RFM segment requires, in the order `fields.rfm_segment_of` tries them:
# a customer gets the first segment whose scores they meet.
RFM_SEGMENT_NEEDS = {
    "champions": gettext_lazy("R 4 or more, F 4 or more and M 4 or more"),
    "cant_lose": gettext_lazy("R 2 or less, F 4 or more and M 4 or more"),
    "loyal": gettext_lazy("R 3 or more and F 4 or more"),
    "at_risk": gettext_lazy("R 2 or less and F 3 or more"),
    "new": gettext_lazy("R 4 or more and F exactly 1"),
    "potential_loyalist": gettext_lazy("R 3 or more and F 2 or more"),
    "lost": gettext_lazy("R exactly 1"),
    "hibernating": gettext_lazy("a purchase and none of the other segments"),
}
RFM_SEGMENT_ORDER = (
    "champions",
    "cant_lose",
    "loyal",
    "at_risk",
    "new",
    "potential_loyalist",
    "lost",
    "hibernating",
)

# The customer's values an explanation may need besides the leaf's own value.
FACT_LAST_PURCHASE = "last_purchase_at"
FACT_ORDERS = "orders"
FACT_SPENT = "total_spent"
RFM_FACTS = (FACT_LAST_PURCHASE, FACT_ORDERS, FACT_SPENT, *RFM_METRICS)


# Days ------------------------------------------------------------------------------


def whole_days_since(now: datetime, moment: datetime) -> int:
    """Whole days from `moment` to `now`, as `days_since_last_purchase` counts."""
    return (now - moment).days


def days_ago_text(days: int) -> str:
    if days <= 0:
        return _("today")
    if days == 1:
        return _("yesterday")
    return ngettext("%(days)d day ago", "%(days)d days ago", days) % {"days": days}


def days_text(days: int) -> str:
    return ngettext("%(days)d day", "%(days)d days", days) % {"days": days}


def orders_text(orders: int) -> str:
    return ngettext("%(count)d order", "%(count)d orders", orders) % {"count": orders}


_MOMENT_NAMES = {
    "last_purchase": (gettext_lazy("last purchase"), gettext_lazy("never bought")),
    "first_purchase": (gettext_lazy("first purchase"), gettext_lazy("never bought")),
    "last_contact": (gettext_lazy("last contact"), gettext_lazy("never contacted")),
}


def _moment_text(name: str, never: str, now: datetime, moment: Any) -> str:
    if moment is None:
        return str(never)
    return f"{name} {days_ago_text(whole_days_since(now, moment))}"


def time_wanted_text(op: str, value: Any) -> str:
    """What a `within_days` or `before_days` condition asks for, in words."""
    if op == "within_days":
        return ngettext(
            "within the last %(days)d day", "within the last %(days)d days", value
        ) % {"days": value}
    if op == "before_days":
        return ngettext(
            "more than %(days)d day ago", "more than %(days)d days ago", value
        ) % {"days": value}
    return _("a date") if value else _("no date")


# Comparisons -------------------------------------------------------------------------


def wanted_text(op: str, value: Any, show=str) -> str:
    """What a comparison asks for, with values written by `show`."""
    match op:
        case "eq":
            return show(value)
        case "ne":
            return _("anything but %(value)s") % {"value": show(value)}
        case "lt":
            return _("less than %(value)s") % {"value": show(value)}
        case "lte":
            return _("at most %(value)s") % {"value": show(value)}
        case "gt":
            return _("more than %(value)s") % {"value": show(value)}
        case "gte":
            return _("at least %(value)s") % {"value": show(value)}
        case "in":
            return _("one of %(values)s") % {
                "values": ", ".join(show(v) for v in value)
            }
        case "not_in":
            return _("none of %(values)s") % {
                "values": ", ".join(show(v) for v in value)
            }
        case "between":
            return _("%(low)s to %(high)s") % {
                "low": show(value[0]),
                "high": show(value[1]),
            }
        case "is_set":
            return _("a value") if value else _("no value")
    return f"{op} {show(value)}"


def _money(value: Any) -> str:
    return money(Decimal(str(value)))


def _days_wanted(op: str, value: Any) -> str:
    if op == "is_set":
        return _("a purchase") if value else _("no purchase")
    return _("%(days)s since the last purchase") % {
        "days": wanted_text(op, value, show=days_text)
    }


# RFM ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Band:
    """The values that earn one score: low and high inclusive; None is open."""

    metric: str
    score: int
    low: Any
    high: Any

    @property
    def empty(self) -> bool:
        if self.low is None or self.high is None:
            return False
        # Monetary bands exclude their lower bound.
        if self.metric == "monetary":
            return self.low >= self.high
        return self.low > self.high

    def text(self) -> str:
        """The band in the metric's unit: "8-20 days", "2-3 orders", "EUR 150-300"."""
        if self.empty:
            return _("no customer (two thresholds are equal)")
        if self.metric == "monetary":
            # Spend above the lower threshold, up to and including the upper one.
            if self.low is None:
                return _("up to %(high)s") % {"high": _money(self.high)}
            if self.high is None:
                return _("more than %(low)s") % {"low": _money(self.low)}
            return _("more than %(low)s up to %(high)s") % {
                "low": _money(self.low),
                "high": _money(self.high),
            }
        unit = days_text if self.metric == "recency" else orders_text
        if self.high is None:
            return _("%(low)s or more") % {"low": unit(self.low)}
        if self.low == self.high:
            return unit(self.low)
        if self.metric == "recency":
            # A range spans several values: always the plural.
            return _("%(low)d-%(high)d days") % {"low": self.low, "high": self.high}
        return _("%(low)d-%(high)d orders") % {"low": self.low, "high": self.high}


def rfm_bands(thresholds: Any, metric: str) -> dict[int, Band]:
    """Score 1-5 -> the values that earn it, from stored quintile thresholds.

    The same arithmetic as `fields.rfm_score`: recency scores 1 plus the number of
    thresholds t with days < ceil(t); frequency and monetary 1 plus the number of
    thresholds the value exceeds. Orders are whole, so "more than 2.4" is 3 or more.
    """
    values = sorted(getattr(thresholds, metric, None) or [])
    if metric == "recency":
        cuts = [math.ceil(t) for t in values]
        return {score: _recency_band(cuts, score) for score in range(1, len(cuts) + 2)}
    if metric == "frequency":
        cuts = [math.floor(t) for t in values]
        return {
            score: Band(
                metric,
                score,
                cuts[score - 2] + 1 if score > 1 else 1,
                cuts[score - 1] if score <= len(cuts) else None,
            )
            for score in range(1, len(cuts) + 2)
        }
    cuts = [Decimal(str(t)) for t in values]
    return {
        score: Band(
            metric,
            score,
            cuts[score - 2] if score > 1 else None,
            cuts[score - 1] if score <= len(cuts) else None,
        )
        for score in range(1, len(cuts) + 2)
    }


def _recency_band(cuts: list[int], score: int) -> Band:
    # Score s: days < exactly s-1 of the cuts, i.e. cuts[n-s+1] <= days < cuts[n-s]
    # for ascending cuts c[0..n-1] (the s-1 largest cuts exceed the days).
    n = len(cuts)
    above = score - 1  # how many cuts exceed the days
    low = cuts[n - above - 1] if above < n else 0
    high = cuts[n - above] - 1 if above > 0 else None
    return Band("recency", score, low, high)


def _rfm_value_text(metric: str, facts: dict[str, Any], now: datetime) -> str:
    if metric == "recency":
        last = facts[FACT_LAST_PURCHASE]
        return _("last purchase %(when)s") % {
            "when": days_ago_text(whole_days_since(now, last))
        }
    if metric == "frequency":
        return orders_text(facts[FACT_ORDERS])
    return money(facts[FACT_SPENT])


def rfm_score_text(metric: str, facts: dict[str, Any], ctx: Context) -> str:
    """ "R 4 (last purchase 12 days ago; R 4 means 8-20 days)" for one metric."""
    letter = RFM_LETTERS[metric]
    score = facts[metric]
    if score is None:
        return _("%(letter)s none (never bought)") % {"letter": letter}
    band = rfm_bands(ctx.rfm, metric).get(score)
    if band is None:
        return _("%(letter)s %(score)d (%(value)s)") % {
            "letter": letter,
            "score": score,
            "value": _rfm_value_text(metric, facts, ctx.now),
        }
    text = _("%(letter)s %(score)d (%(value)s; %(letter)s %(score)d means %(band)s)")
    return text % {
        "letter": letter,
        "score": score,
        "value": _rfm_value_text(metric, facts, ctx.now),
        "band": band.text(),
    }


def rfm_scores_text(facts: dict[str, Any], ctx: Context) -> str:
    if facts[FACT_ORDERS] in (None, 0):
        return _("never bought, so no RFM scores")
    return ", ".join(rfm_score_text(metric, facts, ctx) for metric in RFM_METRICS)


def rfm_segment_name(slug: str) -> str:
    return str(RFM_SEGMENT_NAMES.get(slug, slug))


def rfm_segment_needs_text(slug: str) -> str:
    """What an RFM segment requires, and which segments are tried before it."""
    needs = str(RFM_SEGMENT_NEEDS.get(slug, ""))
    before = (
        RFM_SEGMENT_ORDER[: RFM_SEGMENT_ORDER.index(slug)]
        if slug in (RFM_SEGMENT_ORDER)
        else ()
    )
    if not before:
        return _("%(segment)s needs %(needs)s") % {
            "segment": rfm_segment_name(slug),
            "needs": needs,
        }
    return _("%(segment)s needs %(needs)s, checked after %(before)s") % {
        "segment": rfm_segment_name(slug),
        "needs": needs,
        "before": ", ".join(rfm_segment_name(other) for other in before),
    }


# Leaves ------------------------------------------------------------------------------


def leaf_says(
    leaf: dict, actual: Any, facts: dict[str, Any], ctx: Context
) -> str | None:
    """The sentence for one condition: the customer's value, then what the rule wants.

    None for fields whose value the plain `actual` already says well.
    """
    field, op, value = leaf["field"], leaf["op"], leaf["value"]
    spec = FIELDS.get(field)
    if spec is not None and spec.says is not None:
        return spec.says(ctx, value, actual)
    if field in _MOMENT_NAMES:
        name, never = _MOMENT_NAMES[field]
        return _("%(customer)s; the rule wants %(wanted)s") % {
            "customer": _moment_text(str(name), str(never), ctx.now, actual),
            "wanted": time_wanted_text(op, value),
        }
    if field == "days_since_last_purchase":
        # The leaf's value is the moment of the last purchase.
        last = actual
        return _("%(customer)s; the rule wants %(wanted)s") % {
            "customer": _moment_text(
                _("last purchase"), _("never bought"), ctx.now, last
            ),
            "wanted": _days_wanted(op, value),
        }
    if field == "bought_category_within_days":
        category, days = value["category"], value["days"]
        customer = (
            _("never bought from %(category)s") % {"category": category}
            if actual is None
            else _("last bought from %(category)s %(when)s")
            % {
                "category": category,
                "when": days_ago_text(whole_days_since(ctx.now, actual)),
            }
        )
        return _("%(customer)s; the rule wants %(wanted)s") % {
            "customer": customer,
            "wanted": time_wanted_text("within_days", days),
        }
    if field in ("total_spent", "avg_order_value"):
        label = _("spent") if field == "total_spent" else _("average receipt")
        shown = money(actual) if actual is not None else _("nothing yet")
        return _("%(label)s %(value)s; the rule wants %(wanted)s") % {
            "label": label,
            "value": shown,
            "wanted": wanted_text(op, value, show=_money),
        }
    if field.startswith("rfm_") and field[4:] in RFM_METRICS:
        metric = field[4:]
        return _("%(score)s; the rule wants %(wanted)s") % {
            "score": rfm_score_text(metric, facts, ctx),
            "wanted": wanted_text(
                op, value, show=lambda s: f"{RFM_LETTERS[metric]} {s}"
            ),
        }
    if field == "rfm_segment":
        wanted = value if isinstance(value, list) else [value]
        current = (
            _("in RFM segment %(segment)s") % {"segment": rfm_segment_name(actual)}
            if actual
            else _("in no RFM segment")
        )
        needs = "; ".join(
            rfm_segment_needs_text(slug) for slug in wanted if isinstance(slug, str)
        )
        return _("%(current)s: %(scores)s. The rule wants %(wanted)s (%(needs)s)") % {
            "current": current,
            "scores": rfm_scores_text(facts, ctx),
            "wanted": wanted_text(op, value, show=rfm_segment_name),
            "needs": needs,
        }
    return None


def leaf_facts(field: str) -> tuple[str, ...]:
    """Which of the customer's values `leaf_says` needs for a field."""
    if field == "rfm_segment" or field.removeprefix("rfm_") in RFM_METRICS:
        return RFM_FACTS
    return ()
