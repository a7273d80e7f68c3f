"""Project-wide error pages."""

from django.contrib import admin
from django.shortcuts import render


def permission_denied(request, exception=None):
    """A 403 that says who is signed in, why, and where to go instead.

    Inside the till page it keeps the till's layout; everywhere else the admin's,
    with its navigation, so a marketer who follows an old link is not stranded.
    """
    match = request.resolver_match
    in_desk = bool(match and match.namespace == "desk")
    context = {} if in_desk else admin.site.each_context(request)
    user = request.user
    context.update(
        base_template="desk/base.html" if in_desk else "admin/base_site.html",
        in_desk=in_desk,
        reason=str(exception or ""),
        roles=(
            sorted(user.groups.values_list("name", flat=True))
            if user.is_authenticated
            else []
        ),
    )
    return render(request, "403.html", context, status=403)
