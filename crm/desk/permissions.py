"""Who may use the desk, and for which store.

Clerks (members of the Clerks group with a StaffMember row) work for their own
store only. Superusers may use the desk for any store they choose; the choice is
kept in the session. Everyone else, marketers and integrations included, is
refused.
"""

import functools
from collections.abc import Callable

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from crm.models import StaffMember, Store
from crm.roles import CLERKS

SESSION_STORE_KEY = "desk_store_id"


def desk_store_for(request: HttpRequest) -> Store | None:
    """The store the signed-in user works for at the desk, or None."""
    user = request.user
    if user.is_superuser:
        store_id = request.session.get(SESSION_STORE_KEY)
        if store_id is not None:
            store = Store.objects.filter(pk=store_id).first()
            if store is not None:
                return store
        staff = StaffMember.objects.select_related("store").filter(user=user).first()
        return staff.store if staff is not None else None
    staff = (
        StaffMember.objects.select_related("store")
        .filter(user=user, user__is_active=True, user__groups__name=CLERKS)
        .first()
    )
    return staff.store if staff is not None else None


def desk_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Sign-in, the clerk role and a store; sets `request.desk_store`."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("desk:login"))
        store = desk_store_for(request)
        if store is None:
            if request.user.is_superuser:
                return redirect_to_login(
                    request.get_full_path(),
                    reverse("desk:store_choose"),
                )
            raise PermissionDenied("The desk is for clerks with a store.")
        request.desk_store = store
        # Times on the desk are the store's wall-clock times.
        with timezone.override(store.zone):
            return view(request, *args, **kwargs)

    return wrapper


def superuser_required(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("desk:login"))
        if not request.user.is_superuser:
            raise PermissionDenied("Only administrators choose a store.")
        return view(request, *args, **kwargs)

    return wrapper
