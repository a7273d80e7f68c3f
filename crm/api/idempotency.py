"""`Idempotency-Key` on POSTs that record things: a retry never records twice.

The first request with a key inserts an IdempotencyRecord (one INSERT ... ON
CONFLICT DO NOTHING) in the same transaction as the work it does, and the record
keeps the response. A retry with the same key
and body gets that response back (with `Idempotent-Replayed: true`); the same key
with another body is refused with 422. A retry that arrives while the first request
is still running waits on the record's unique index until the first commits, then
replays its response; if the first fails, the retry does the work itself.

Only successful responses are kept: a request refused as invalid may be corrected
and sent again with the same key.
"""

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from .exceptions import IdempotencyKeyReused, IdempotencyRequestInProgress
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
    if not record.status_code:
        raise IdempotencyRequestInProgress()
    return Response(
        record.response_body,
        status=record.status_code,
        headers={"Idempotent-Replayed": "true"},
    )


def _claim(*, user_id: int, scope: str, key: str, digest: str) -> int | None:
    """Insert the record of a new key and return its id, or None if the key exists.

    ON CONFLICT waits for a concurrent request holding the same key to finish: if
    it committed, nothing is inserted; if it rolled back, this one claims the key.
    """
    table = IdempotencyRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table}
                (user_id, scope, key, request_hash, status_code, response_body,
                 created_at)
            VALUES (%s, %s, %s, %s, 0, %s, %s)
            ON CONFLICT (user_id, scope, key) DO NOTHING
            RETURNING id
            """,
            [
                user_id,
                scope,
                key,
                digest,
                "{}",
                connection.ops.adapt_datetimefield_value(timezone.now()),
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def idempotent(
    request: Request, *, scope: str, handler: Callable[[], Response]
) -> Response:
    """Run `handler` once per (user, scope, Idempotency-Key) and keep its response."""
    key = _key(request)
    if key is None:
        # One transaction (a savepoint when nested) around the whole handler, so
        # the services inside need none of their own.
        with transaction.atomic():
            return handler()
    digest = request_hash(request)
    with transaction.atomic():
        record_id = _claim(user_id=request.user.pk, scope=scope, key=key, digest=digest)
        if record_id is None:
            # Used before, or by a request that committed while this one waited.
            return _replay(
                IdempotencyRecord.objects.get(user=request.user, scope=scope, key=key),
                digest,
            )
        response = handler()
        if 200 <= response.status_code < 300:
            _keep(record_id, response)
        else:
            IdempotencyRecord.objects.filter(pk=record_id).delete()
    return response


def _keep(record_id: int, response: Response) -> None:
    """Store the response of a claimed key; the JSON goes in as rendered."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {IdempotencyRecord._meta.db_table} "
            "SET status_code = %s, response_body = %s WHERE id = %s",
            [
                response.status_code,
                JSONRenderer().render(response.data).decode(),
                record_id,
            ],
        )


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
