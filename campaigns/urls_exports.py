"""Run exports (campaigns.views_exports); include under a prefix, for example
path("campaigns/", include("campaigns.urls_exports"))."""

from django.urls import path

from . import views_exports

app_name = "campaign-exports"

urlpatterns = [
    path(
        "runs/<int:run_id>/mailing-list.csv",
        views_exports.mailing_list_csv,
        name="mailing-list-csv",
    ),
    path(
        "runs/<int:run_id>/mailing-list/",
        views_exports.mailing_list_print,
        name="mailing-list-print",
    ),
    path(
        "runs/<int:run_id>/audience.csv",
        views_exports.audience_csv_download,
        name="audience-csv",
    ),
]
