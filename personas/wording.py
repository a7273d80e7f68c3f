"""How persona pages and suggestions put figures into words, with correct plurals."""

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

# Below this many purchases a month a customer "hardly ever" buys.
HARDLY_EVER = 0.05


def frequency_words(per_month: float | None) -> str:
    """A purchase frequency in words: "about every 2 months", "2-3 times a month"."""
    if per_month is None or per_month < HARDLY_EVER:
        return _("hardly ever")
    if per_month >= 1.5:
        low = int(per_month)
        return _("%(low)d-%(high)d times a month") % {"low": low, "high": low + 1}
    if per_month >= 0.75:
        return _("about once a month")
    months = round(1 / per_month)
    return ngettext("about every month", "about every %(months)d months", months) % {
        "months": months
    }
