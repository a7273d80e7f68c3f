"""Token authentication: DRF's own, reading what the permissions need with it.

Every request's permission check reads the user's groups (its roles) and a till's
store (its StaffMember row). DRF's `TokenAuthentication` reads the token through
its `model`'s default manager, so a proxy of DRF's token whose manager adds
`select_related`/`prefetch_related` brings both along: one query for the token,
its user and the staff row, one for the groups.
"""

from rest_framework.authentication import TokenAuthentication

from .models import ApiToken


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, with the roles and store preloaded."""

    model = ApiToken
