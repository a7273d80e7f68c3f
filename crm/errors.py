"""One way for services to reject input: a ValidationError keyed by field.

Forms (`form.add_error(None, exc)`), the admin and the API exception handler all
understand Django's ValidationError, so a service raises the same error whoever
called it.
"""

from typing import Any

from django.core.exceptions import ValidationError


def field_error(field: str, message: str, code: str, **params: Any) -> ValidationError:
    """A ValidationError for `field` (for example "lines[0].sku") with a code."""
    return ValidationError({field: ValidationError(message, code=code, params=params)})
