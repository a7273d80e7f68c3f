"""The public ends of the links in campaign email: no sign-in, signed tokens.

A forged or stale token gets a plain 404 and nothing is written.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_safe

from .tracking import (
    BadToken,
    click_target,
    email_click_record,
    email_open_record,
    email_unsubscribe,
    unsubscribe_token_check,
)

# A transparent 1x1 GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
    b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def _not_found() -> HttpResponse:
    return HttpResponseNotFound(
        _("This link is not valid. It may have been copied incompletely."),
        content_type="text/plain; charset=utf-8",
    )


# csrf_exempt: RFC 8058 one-click unsubscribes are POSTed by mail programs, which
# hold no cookie; the signed token is what authorises the request.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page with a button (link scanners must not unsubscribe anyone);
    POST: withdraw email consent, from the button or the mail program."""
    try:
        if request.method == "POST":
            one_click = request.POST.get("List-Unsubscribe") == "One-Click"
            email_unsubscribe(token=token, one_click=one_click)
        else:
            unsubscribe_token_check(token)
    except BadToken:
        return _not_found()
    return render(
        request,
        "campaigns/unsubscribe.html",
        {"done": request.method == "POST"},
    )


@never_cache
@require_safe
def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    try:
        if request.method == "GET":
            email_open_record(token=token)
    except BadToken:
        return _not_found()
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_safe
def click(request: HttpRequest, token: str) -> HttpResponse:
    try:
        # Link checkers send HEAD; only a GET is a person clicking.
        if request.method == "GET":
            url = email_click_record(token=token)
        else:
            url = click_target(token=token)
    except BadToken:
        return _not_found()
    return redirect(url)
