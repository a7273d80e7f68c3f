"""The API's one error format, whoever raised the error.

Every error response is `{"errors": [{"field": ..., "code": ..., "message": ...}]}`.
`field` is a path into the request body such as "lines[0].sku", or null when the
error is about the request as a whole. Service ValidationErrors keyed by such paths
(see crm.errors.field_error) come out unchanged.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

logger = logging.getLogger(__name__)

NON_FIELD_KEYS = {"__all__", "non_field_errors"}


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = _(
        "This Idempotency-Key was used with a different request; use a new key."
    )
    default_code = "idempotency_key_reused"


def _join(prefix: str | None, key: Any) -> str | None:
    if isinstance(key, int):
        return f"{prefix or ''}[{key}]"
    if key in NON_FIELD_KEYS:
        return prefix
    return f"{prefix}.{key}" if prefix else str(key)


def drf_errors(detail: Any, field: str | None = None) -> list[dict]:
    """Flatten DRF's nested error detail into the API's list of errors."""
    if isinstance(detail, dict):
        return [
            error
            for key, value in detail.items()
            for error in drf_errors(value, _join(field, key))
        ]
    if isinstance(detail, list):
        nested = any(isinstance(item, dict | list) for item in detail)
        if nested:
            # A list of per-item errors (many=True): empty dicts are valid items.
            return [
                error
                for index, item in enumerate(detail)
                for error in drf_errors(item, _join(field, index))
            ]
        return [error for item in detail for error in drf_errors(item, field)]
    code = getattr(detail, "code", None) or "invalid"
    return [{"field": field, "code": code, "message": str(detail)}]


def django_errors(exc: DjangoValidationError) -> list[dict]:
    """A Django ValidationError (from a service or a model) as the API's errors."""
    if hasattr(exc, "error_dict"):
        return [
            {
                "field": None if key in NON_FIELD_KEYS else key,
                "code": error.code or "invalid",
                "message": next(iter(error)),
            }
            for key, errors in exc.error_dict.items()
            for error in errors
        ]
    return [
        {"field": None, "code": error.code or "invalid", "message": next(iter(error))}
        for error in exc.error_list
    ]


def error_response(
    errors: list[dict], status_code: int, headers: dict | None = None
) -> Response:
    return Response({"errors": errors}, status=status_code, headers=headers)


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    """Turn service, Django and DRF errors into the API's error format."""
    if isinstance(exc, DjangoValidationError):
        set_rollback()
        return error_response(django_errors(exc), status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, DataError):
        # A value the database refuses (out of range, malformed) that validation
        # let through: the request's fault, never a server error.
        logger.warning("API input refused by the database: %s", exc)
        set_rollback()
        return error_response(
            [
                {
                    "field": None,
                    "code": "invalid",
                    "message": str(_("A value in the request is out of range.")),
                }
            ],
            status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(max(int(exc.wait + 0.999), 1))
    if isinstance(exc, exceptions.ValidationError):
        errors = drf_errors(exc.detail)
    else:
        errors = [
            {
                "field": None,
                "code": getattr(exc.detail, "code", None) or exc.default_code,
                "message": str(exc.detail),
            }
        ]
    set_rollback()
    return error_response(errors, exc.status_code, headers)
