"""The persona panel of the customer's page (crm.hooks.customer_admin_panels)."""

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from crm.models import Customer

from ..selectors import customer_persona_explain


def customer_persona_panel(
    *, request: HttpRequest, customer: Customer
) -> SafeString | None:
    """`customer_admin_panels` receiver: the customer's persona and why."""
    if not request.user.has_perm("personas.view_persona"):
        return None
    explained = customer_persona_explain(customer=customer)
    return render_to_string(
        "admin/personas/customer_persona.html",
        {"customer": customer, "explained": explained},
    )
