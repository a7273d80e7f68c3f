"""Erasing a customer's personal data on request (the GDPR's right to erasure)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from crm.models import Consent, Contact, Customer, LoyaltyCard
from crm.webhooks.services import customer_erased_emit, webhook_deliveries_scrub

from .contacts import ContactRef, contact_announce

# What erasing sets each personal field to. Everything that names, reaches or
# describes the person goes; what stays is an anonymous record of purchases.
ERASED_VALUES = {
    "email": None,
    "phone": "",
    "first_name": "",
    "last_name": "",
    "birth_date": None,
    "gender": Customer.Gender.UNKNOWN,
    "address": "",
    "postal_code": "",
    "city": "",
    "region": "",
    "country": "",
    "income_band": Customer.IncomeBand.UNKNOWN,
    "occupation": "",
    "family_situation": Customer.FamilySituation.UNKNOWN,
    "preferred_channel": Customer.PreferredChannel.UNKNOWN,
    "social_followers": 0,
}
ERASURE_WORDING = "Personal data erased at the customer's request."


@transaction.atomic
def customer_erase(
    *, customer: Customer, by: AbstractBaseUser | None = None
) -> Customer:
    """Erase a customer's personal data and keep the anonymous record.

    Gone: the customer's identifying and descriptive fields, interests (tags),
    contact payloads, and what webhook deliveries not yet sent say about them.
    Every consent is withdrawn, loyalty cards are blocked (a card would tie new
    sales to the person again), and subscribers to customer.erased are told, so
    they delete their copy. Sales, points and statistics stay: bookkeeping keeps
    sales for years, and they no longer name anyone. Segments re-evaluate the
    record. Erasing twice is harmless; an erased customer cannot be changed.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    if customer.erased_at is not None:
        return customer
    now = timezone.now()
    granted = (
        Consent.objects.filter(customer=customer)
        .latest_per_channel()
        .filter(status=Consent.Status.GRANTED)
        .values_list("channel", flat=True)
    )
    Consent.objects.bulk_create(
        Consent(
            customer=customer,
            channel=channel,
            status=Consent.Status.WITHDRAWN,
            source=Consent.Source.ADMIN,
            wording=ERASURE_WORDING,
            recorded_by=by,
            recorded_at=now,
        )
        for channel in list(granted)
    )
    Contact.objects.filter(customer=customer).exclude(payload={}).update(payload={})
    customer.tags.clear()
    LoyaltyCard.objects.filter(
        customer=customer, status=LoyaltyCard.Status.ACTIVE
    ).update(status=LoyaltyCard.Status.BLOCKED)
    for field, value in ERASED_VALUES.items():
        setattr(customer, field, value)
    customer.erased_at = now
    customer.save(update_fields=[*ERASED_VALUES, "erased_at", "updated_at"])
    webhook_deliveries_scrub(customer_id=customer.pk)
    customer_erased_emit(customer_id=customer.pk, erased_at=now)
    # Demographic and geographic segments let the record go.
    contact_announce(contacts=[ContactRef(customer.pk, None)])
    return customer
