"""Token authentication that reads what the permissions need in the same query.

DRF's TokenAuthentication reads the token and its user; the permission checks then
read the user's groups (roles) and a till's stores: three queries on every request,
and compiling them costs more than running them. On PostgreSQL one written-out
query returns the token, its user and both lists as arrays.
"""

import functools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token

from crm.models import StaffMember

from .permissions import api_access_preload


@functools.cache
def _token_query() -> tuple[str, list[str], list[str]]:
    """The query, and the attribute names of the token's and the user's columns."""
    user_model = get_user_model()
    user_fields = user_model._meta.concrete_fields
    token_fields = [f for f in Token._meta.concrete_fields if f.name != "user"]
    memberships = user_model.groups.through._meta.db_table
    sql = f"""
        SELECT {", ".join(f"t.{f.column}" for f in token_fields)},
               {", ".join(f"u.{f.column}" for f in user_fields)},
               ARRAY(SELECT g.name FROM {Group._meta.db_table} g
                     JOIN {memberships} m ON m.group_id = g.id
                     WHERE m.user_id = u.id),
               ARRAY(SELECT s.store_id FROM {StaffMember._meta.db_table} s
                     WHERE s.user_id = u.id)
        FROM {Token._meta.db_table} t
        JOIN {user_model._meta.db_table} u ON u.{user_model._meta.pk.column} = t.user_id
        WHERE t.key = %s
    """  # noqa: S608 - table and column names from the models
    return sql, [f.attname for f in token_fields], [f.attname for f in user_fields]


class ApiTokenAuthentication(TokenAuthentication):
    """`Authorization: Token <key>`, as DRF's, with the roles and stores preloaded."""

    def authenticate_credentials(self, key):
        if connection.vendor != "postgresql":
            return super().authenticate_credentials(key)
        sql, token_names, user_names = _token_query()
        with connection.cursor() as cursor:
            cursor.execute(sql, [key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        split = len(token_names)
        user = get_user_model().from_db(
            connection.alias, user_names, row[split : split + len(user_names)]
        )
        if not user.is_active:
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        # from_db takes the values in the order of the model's fields.
        token_values = dict(zip(token_names, row[:split], strict=True))
        token_values["user_id"] = user.pk
        names = [f.attname for f in Token._meta.concrete_fields]
        token = Token.from_db(
            connection.alias, names, [token_values[name] for name in names]
        )
        token.user = user
        group_names, store_ids = row[-2:]
        api_access_preload(user, group_names=group_names, store_ids=store_ids)
        return user, token
