"""One way for services to reject input: a ValidationError keyed by field.

Forms (`form.add_error(None, exc)`), the admin and the API exception handler all
understand Django's ValidationError, so a service raises the same error whoever
called it.
"""

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def field_error(field: str, message: str, code: str, **params: Any) -> ValidationError:
    """A ValidationError for `field` (for example "lines[0].sku") with a code."""
    return ValidationError({field: ValidationError(message, code=code, params=params)})


def customer_erased_refuse(customer: Any, *, field: str = "customer") -> None:
    """Refuse to record anything new about a customer whose data was erased."""
    if customer is not None and customer.erased_at is not None:
        raise field_error(
            field,
            _(
                "Customer %(id)s was erased at their request; register them again "
                "as a new customer if they come back."
            ),
            "customer_erased",
            id=customer.pk,
        )
