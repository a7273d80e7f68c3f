"""Who may do what through the API: roles from groups, stores from StaffMember.

A token belongs to a user; the user's groups are its roles (crm.roles):

- read-only: read everything, write nothing;
- till: record sales and contacts for its stores (its StaffMember row), register
  customers there, and read only the customers those stores serve;
- marketing: read everything, manage segments, personas and webhooks;
- admin (a superuser or the API admins group): everything.

Deny by default: a user with none of these roles gets 403 on every endpoint.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.permissions import SAFE_METHODS, BasePermission

from crm.models import StaffMember
from crm.roles import API_ADMINS, API_READ_ONLY, API_TILLS, MARKETERS

ADMIN = "admin"
READ_ONLY = "read_only"
TILL = "till"
MARKETING = "marketing"

GROUP_ROLES = {
    API_ADMINS: ADMIN,
    API_READ_ONLY: READ_ONLY,
    API_TILLS: TILL,
    MARKETERS: MARKETING,
}

# Roles that see every customer, receipt and contact.
SEE_ALL = frozenset({ADMIN, READ_ONLY, MARKETING})
EVERYONE = frozenset({ADMIN, READ_ONLY, MARKETING, TILL})
TILLS = frozenset({ADMIN, TILL})
MARKETERS_ONLY = frozenset({ADMIN, MARKETING})
ADMINS = frozenset({ADMIN})


def api_roles(user: AbstractBaseUser | AnonymousUser) -> frozenset[str]:
    """The API roles of a user, read once per request.

    Token authentication prefetches the groups (crm.api.authentication), so a
    token's request reads them with the token.
    """
    if not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_api_roles", None)
    if cached is None:
        if user.is_superuser:
            cached = frozenset({ADMIN})
        else:
            names = (group.name for group in user.groups.all())
            cached = frozenset(GROUP_ROLES[n] for n in names if n in GROUP_ROLES)
        user._api_roles = cached
    return cached


def sees_all(user) -> bool:
    return bool(api_roles(user) & SEE_ALL)


def till_store_ids(user) -> frozenset[int]:
    """The stores a till user records sales for: its StaffMember store.

    Token authentication selects the staff row with the user; Django caches the
    row (or its absence) on the user either way.
    """
    try:
        return frozenset({user.staff_member.store_id})
    except StaffMember.DoesNotExist:
        return frozenset()


class RolePermission(BasePermission):
    """Reads need one of the view's `read_roles`, writes one of its `write_roles`.

    Extra actions narrow or widen these with `@action(..., read_roles=...,
    write_roles=...)`; the objects themselves are scoped by `get_queryset`.
    """

    message = "Your token's role does not allow this."

    def has_permission(self, request, view) -> bool:
        roles = api_roles(request.user)
        if request.method in SAFE_METHODS:
            wanted = getattr(view, "read_roles", EVERYONE)
        else:
            wanted = getattr(view, "write_roles", ADMINS)
        return bool(roles & wanted)
