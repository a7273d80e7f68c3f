"""`Idempotency-Key` on POSTs that record things: a retry never records twice.

A request with a key does its work, then stores its response under the key (one
INSERT ... ON CONFLICT DO NOTHING) in the same transaction. A retry with the same
key and body gets that response back (with `Idempotent-Replayed: true`); the same
key with another body is refused with 422.

The key is taken last rather than first: a sale costs one statement fewer, and a
retry, which is rare, pays instead. A retry does the work again, finds the key
taken and rolls its own work back before it answers with the first response. A
retry that arrives while the first request is still running waits on the key's
unique index until the first commits, then does the same; if the first fails, the
retry's work stands. A retry whose work fails where the first succeeded (the
points already spent, the till's receipt number already taken) answers with the
first response too.

Only successful responses are kept: a request refused as invalid may be corrected
and sent again with the same key.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from .exceptions import IdempotencyKeyReused
from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
PURGE_BATCH = 10_000
MAX_KEY_LENGTH = 255

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name=HEADER,
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A unique key per logical request (for example a UUID). Retrying with the "
        "same key and body returns the first response instead of recording twice; "
        "the same key with a different body is refused with 422."
    ),
)


class _KeyTaken(Exception):
    """Raised inside the request's transaction to roll back a retry's work."""


def request_hash(request: Request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.path}\n{body}".encode()).hexdigest()


def _key(request: Request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii():
        raise exceptions.ValidationError(
            {
                HEADER: [
                    exceptions.ErrorDetail(
                        f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} ASCII "
                        "characters.",
                        code="invalid_idempotency_key",
                    )
                ]
            }
        )
    return key


def _replay(record: IdempotencyRecord, digest: str) -> Response:
    if record.request_hash != digest:
        raise IdempotencyKeyReused()
    return Response(
        record.response_body,
        status=record.status_code,
        headers={"Idempotent-Replayed": "true"},
    )


def _keep(
    *, user_id: int, scope: str, key: str, digest: str, response: Response
) -> bool:
    """Store the response under the key; False if the key is taken.

    ON CONFLICT waits for a concurrent request holding the same key to finish: if
    it committed, nothing is inserted; if it rolled back, this one takes the key.
    The JSON goes in as rendered.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {IdempotencyRecord._meta.db_table}
                (user_id, scope, key, request_hash, status_code, response_body,
                 created_at)
            VALUES (%s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (user_id, scope, key) DO NOTHING
            RETURNING id
            """,
            [
                user_id,
                scope,
                key,
                digest,
                response.status_code,
                JSONRenderer().render(response.data).decode(),
                connection.ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
        return cursor.fetchone() is not None


def _record(request: Request, scope: str, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(
        user=request.user, scope=scope, key=key
    ).first()


def idempotent(
    request: Request,
    *,
    scope: str,
    handler: Callable[[], Response],
    _tries: int = 2,
) -> Response:
    """Run `handler` once per (user, scope, Idempotency-Key) and keep its response."""
    key = _key(request)
    if key is None:
        # One transaction (a savepoint when nested) around the whole handler, so
        # the services inside need none of their own.
        with transaction.atomic():
            return handler()
    digest = request_hash(request)
    try:
        with transaction.atomic():
            response = handler()
            if 200 <= response.status_code < 300 and not _keep(
                user_id=request.user.pk,
                scope=scope,
                key=key,
                digest=digest,
                response=response,
            ):
                raise _KeyTaken
            return response
    except _KeyTaken:
        record = _record(request, scope, key)
    except (exceptions.APIException, ValidationError, DatabaseError):
        # A retry can be refused where the first request succeeded, because of
        # what the first did; the first answer stands.
        record = _record(request, scope, key)
        if record is None:
            raise
    if record is None:
        # The key was purged (days old) between the conflict and this read: it is
        # free again, and this request's work was rolled back. Once more, at most.
        if _tries <= 1:
            raise IdempotencyKeyReused()
        return idempotent(request, scope=scope, handler=handler, _tries=_tries - 1)
    return _replay(record, digest)


def idempotency_records_purge(*, now=None) -> int:
    """Forget keys older than LOYALIST_IDEMPOTENCY_KEEP_DAYS; returns how many.

    Clients retry within minutes; a key reused after this many days records anew.
    Deleted in batches, so the table is never locked for long.
    """
    keep = timedelta(days=settings.LOYALIST_IDEMPOTENCY_KEEP_DAYS)
    cutoff = (now or timezone.now()) - keep
    purged = 0
    while True:
        batch = list(
            IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list(
                "pk", flat=True
            )[:PURGE_BATCH]
        )
        if not batch:
            return purged
        purged += IdempotencyRecord.objects.filter(pk__in=batch).delete()[0]
