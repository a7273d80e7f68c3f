"""Rows only the segment engine writes: history and RFM thresholds."""

from django.contrib import admin
from django.template.loader import render_to_string
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from crm.admin.base import ObjectSelectRelatedMixin, ReadOnlyAdminMixin

from ..explanations import RFM_METRICS, SCORES, rfm_bands
from ..models import RfmThresholds, SegmentEvent


@admin.register(SegmentEvent)
class SegmentEventAdmin(ReadOnlyAdminMixin, ObjectSelectRelatedMixin, admin.ModelAdmin):
    list_display = ["occurred_at", "segment", "customer", "kind", "cause", "contact"]
    list_select_related = ["segment", "customer", "contact"]
    list_filter = ["kind", "cause", "segment"]
    search_fields = ["=customer__email"]
    search_help_text = _("The customer's exact email address.")
    show_full_result_count = False
    list_per_page = 100
    ordering = ["-id"]
    object_select_related = ("customer", "segment", "contact")
    fields = ["segment", "customer", "kind", "cause", "occurred_at", "contact"]


def _band_texts(thresholds: RfmThresholds, metric: str) -> list[str]:
    bands = rfm_bands(thresholds, metric)
    return [bands[score].text() if score in bands else "-" for score in SCORES]


@admin.register(RfmThresholds)
class RfmThresholdsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The quintile thresholds as what each score means, in days, orders and money."""

    list_display = [
        "computed_at",
        "customers",
        "recency_bands",
        "frequency_bands",
        "monetary_bands",
    ]
    ordering = ["-computed_at", "-id"]
    fields = ["computed_at", "customers", "score_table"]
    readonly_fields = ["score_table"]

    def _bands(self, obj: RfmThresholds, metric: str) -> str:
        # Score 5 first: the best customers lead, as on the dashboard's grid.
        texts = _band_texts(obj, metric)
        return "; ".join(f"{score}: {texts[score - 1]}" for score in reversed(SCORES))

    @admin.display(description=_("R: days since the last purchase"))
    def recency_bands(self, obj: RfmThresholds) -> str:
        return self._bands(obj, "recency")

    @admin.display(description=_("F: number of orders"))
    def frequency_bands(self, obj: RfmThresholds) -> str:
        return self._bands(obj, "frequency")

    @admin.display(description=_("M: money spent"))
    def monetary_bands(self, obj: RfmThresholds) -> str:
        return self._bands(obj, "monetary")

    @admin.display(description=_("what each score means"))
    def score_table(self, obj: RfmThresholds) -> SafeString:
        columns = {metric: _band_texts(obj, metric) for metric in RFM_METRICS}
        rows = [
            {
                "score": score,
                "bands": [columns[metric][score - 1] for metric in RFM_METRICS],
            }
            for score in reversed(SCORES)
        ]
        return render_to_string("admin/segments/rfm_score_table.html", {"rows": rows})
