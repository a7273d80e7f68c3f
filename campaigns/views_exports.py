"""Downloads of what a run sent on the channels that are lists, not messages:
the direct-mail address list (CSV and a print page) and the social audience.

Staff with `campaigns.view_delivery` (Marketers, admins) open them from the
admin. The audience CSV also opens with the signed, expiring link that the
`audience.ready` webhook event carries, for an ad platform's sync job that has
no login.
"""

import csv
from collections.abc import Iterator
from io import StringIO

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from campaigns.channels.post import MAILING_COLUMNS, mailing_list_rows
from campaigns.channels.social import (
    audience_csv,
    audience_download_signature_valid,
    audience_name,
)
from campaigns.models import CampaignRun

PERMISSION = "campaigns.view_delivery"


def _run(run_id: int) -> CampaignRun:
    return get_object_or_404(CampaignRun.objects.select_related("campaign"), pk=run_id)


def _filename(run: CampaignRun, kind: str) -> str:
    return audience_name(campaign_slug=run.campaign.slug, run_key=f"{run.key}-{kind}")


def _csv_lines(rows) -> Iterator[str]:
    buffer = StringIO()
    writer = csv.writer(buffer)
    writer.writerow(MAILING_COLUMNS)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _attachment(lines: Iterator[str], filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


@staff_member_required
@permission_required(PERMISSION, raise_exception=True)
def mailing_list_csv(request: HttpRequest, run_id: int) -> StreamingHttpResponse:
    run = _run(run_id)
    return _attachment(
        _csv_lines(mailing_list_rows(run)), _filename(run, "mailing-list")
    )


@staff_member_required
@permission_required(PERMISSION, raise_exception=True)
def mailing_list_print(request: HttpRequest, run_id: int) -> HttpResponse:
    run = _run(run_id)
    return render(
        request,
        "campaigns/mailing_list.html",
        {
            "run": run,
            "campaign": run.campaign,
            "rows": list(mailing_list_rows(run)),
            "csv_url": reverse("campaign-exports:mailing-list-csv", args=[run.pk]),
        },
    )


def audience_csv_download(request: HttpRequest, run_id: int) -> HttpResponse:
    """The run's audience: for staff allowed to see deliveries, or anyone with a
    valid link from the audience.ready event."""
    signature = request.GET.get("signature", "")
    if signature:
        if not audience_download_signature_valid(run_id=run_id, signature=signature):
            raise PermissionDenied("This download link is invalid or has expired.")
    elif not (request.user.is_active and request.user.is_staff):
        return redirect_to_login(request.get_full_path(), reverse("admin:login"))
    elif not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    run = _run(run_id)
    return _attachment(audience_csv(run), _filename(run, "audience"))
