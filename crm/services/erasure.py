"""Erasing a customer's personal data on request (the GDPR's right to erasure)."""

from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from crm import hooks
from crm.api.models import IdempotencyRecord
from crm.models import Consent, Contact, Customer, LoyaltyCard, PushToken
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
    push tokens, contact payloads, what the webhook delivery log says about them,
    the kept answers of their idempotent requests, and their name in the admin's
    history.
    Every consent is withdrawn, loyalty cards are blocked (a card would tie new
    sales to the person again), and subscribers to customer.erased are told, so
    they delete their copy. Sales, points and statistics stay: bookkeeping keeps
    sales for years, and they no longer name anyone. Segments re-evaluate the
    record. An erased customer cannot be changed; erasing again repeats the
    scrubbing (for anything a request racing the first erasure wrote) and tells
    no one again.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    first_time = customer.erased_at is None
    now = timezone.now()
    _consents_withdraw(customer, by=by, now=now)
    Contact.objects.filter(customer=customer).exclude(payload={}).update(payload={})
    customer.tags.clear()
    # A device token reaches the person as surely as a phone number does.
    PushToken.objects.filter(customer=customer).delete()
    LoyaltyCard.objects.filter(
        customer=customer, status=LoyaltyCard.Status.ACTIVE
    ).update(status=LoyaltyCard.Status.BLOCKED)
    for field, value in ERASED_VALUES.items():
        setattr(customer, field, value)
    if first_time:
        customer.erased_at = now
    customer.save(update_fields=[*ERASED_VALUES, "erased_at", "updated_at"])
    webhook_deliveries_scrub(customer_id=customer.pk)
    hooks.customer_erased.send(customer_id=customer.pk)
    # Kept answers are replayed to retries for days; a contact's carries its payload.
    IdempotencyRecord.objects.filter(response_body__customer=customer.pk).delete()
    customer_type = ContentType.objects.get_for_model(Customer)
    LogEntry.objects.filter(
        content_type=customer_type, object_id=str(customer.pk)
    ).update(object_repr=f"#{customer.pk}")
    if by is not None:
        LogEntry.objects.create(
            user_id=by.pk,
            content_type=customer_type,
            object_id=str(customer.pk),
            object_repr=f"#{customer.pk}",
            action_flag=CHANGE,
            change_message="Personal data erased at the customer's request.",
        )
    if first_time:
        customer_erased_emit(customer_id=customer.pk, erased_at=customer.erased_at)
    # Demographic and geographic segments let the record go.
    contact_announce(contacts=[ContactRef(customer.pk, None)])
    return customer


def _consents_withdraw(customer: Customer, *, by: AbstractBaseUser | None, now) -> None:
    """Withdraw every channel whose current entry is a grant.

    Each withdrawal is stamped no earlier than the grant it overrides: a grant
    recorded with a time a little ahead (a till's clock) must not stay current.
    """
    granted = (
        Consent.objects.filter(customer=customer)
        .latest_per_channel()
        .filter(status=Consent.Status.GRANTED)
        .values_list("channel", "recorded_at")
    )
    Consent.objects.bulk_create(
        Consent(
            customer=customer,
            channel=channel,
            status=Consent.Status.WITHDRAWN,
            source=Consent.Source.ADMIN,
            wording=ERASURE_WORDING,
            recorded_by=by,
            recorded_at=max(now, granted_at),
        )
        for channel, granted_at in list(granted)
    )
