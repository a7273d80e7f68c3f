"""The current consent of a delivery's customer, for reads over deliveries."""

from django.db.models import OuterRef, QuerySet, Subquery

from crm.models import Consent
from crm.querysets import CONSENT_NEWEST_FIRST


def delivery_consent_current(channel: str) -> Subquery:
    """The status of the newest consent entry of the delivery's customer on
    `channel` (None if never asked), to annotate a Delivery queryset with."""
    return Subquery(
        Consent.objects.filter(customer_id=OuterRef("customer_id"), channel=channel)
        .order_by(*CONSENT_NEWEST_FIRST)
        .values("status")[:1]
    )


def deliveries_still_reachable(deliveries: QuerySet, channel: str) -> QuerySet:
    """The deliveries whose customer was not erased and still grants `channel`:
    a withdrawal after sending takes them off an export not yet used."""
    return deliveries.annotate(
        current_consent=delivery_consent_current(channel)
    ).filter(customer__erased_at__isnull=True, current_consent=Consent.Status.GRANTED)
