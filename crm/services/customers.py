from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from crm.errors import customer_erased_refuse
from crm.models import Consent, Customer, CustomerStats, Tag
from crm.webhooks.services import customer_created_emit

from .contacts import ContactRef, contact_announce

# What a caller may set on a customer, in the order the API shows them; everything
# else is kept by the services. `tags` goes to the services as its own argument.
CUSTOMER_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "birth_date",
    "gender",
    "address",
    "postal_code",
    "city",
    "region",
    "country",
    "income_band",
    "occupation",
    "family_situation",
    "preferred_channel",
    "language",
    "social_followers",
    "service_effort",
    "home_store",
    "source",
    "tags",
    "created_at",
)
_COLUMN_FIELDS = frozenset(CUSTOMER_FIELDS) - {"tags"}


def _normalise_email(email: str | None) -> str | None:
    email = (email or "").strip()
    return email.lower() or None


def _email_taken_error(email: str) -> ValidationError:
    return ValidationError(
        {
            "email": ValidationError(
                _("A customer with email %(email)s already exists."),
                code="email_taken",
                params={"email": email},
            )
        }
    )


def _tags_set(*, customer: Customer, tags: list[str]) -> None:
    from django.utils.text import slugify

    slugs = {slugify(tag): tag for tag in tags if slugify(tag)}
    existing = {tag.slug: tag for tag in Tag.objects.filter(slug__in=slugs)}
    missing = [
        Tag(slug=slug, name=name)
        for slug, name in slugs.items()
        if slug not in existing
    ]
    Tag.objects.bulk_create(missing, ignore_conflicts=True)
    customer.tags.set(Tag.objects.filter(slug__in=slugs))


def _customer_save(customer: Customer, *, update_fields: list[str] | None) -> None:
    customer.full_clean(
        exclude=["tags"], validate_unique=False, validate_constraints=False
    )
    if customer.email and (
        Customer.objects.by_email(customer.email).exclude(pk=customer.pk).exists()
    ):
        raise _email_taken_error(customer.email)
    try:
        with transaction.atomic():
            customer.save(update_fields=update_fields)
    except IntegrityError as exc:
        # Two clerks registering the same address at once: the constraint decides.
        if customer.email and "email" in str(exc).lower():
            raise _email_taken_error(customer.email) from exc
        raise


def _erased_refuse_locked(customer: Customer) -> None:
    """Refuse an erased customer, read under the row's lock: an erasure that
    commits after the caller loaded `customer` must not have its fields written
    back."""
    customer.erased_at = (
        Customer.objects.select_for_update()
        .filter(pk=customer.pk)
        .values_list("erased_at", flat=True)
        .get()
    )
    customer_erased_refuse(customer)


@transaction.atomic
def customer_create(*, tags: list[str] | None = None, **fields: Any) -> Customer:
    """Create a customer (validated) together with its empty statistics row."""
    unknown = set(fields) - _COLUMN_FIELDS
    if unknown:
        raise TypeError(f"customer_create() got unknown fields: {sorted(unknown)}")
    fields["email"] = _normalise_email(fields.get("email"))
    customer = Customer(**fields)
    _customer_save(customer, update_fields=None)
    CustomerStats.objects.create(customer=customer)
    if tags:
        _tags_set(customer=customer, tags=tags)
    contact_announce(contacts=[ContactRef(customer.pk, None)])
    customer_created_emit(customer=customer)
    return customer


@transaction.atomic
def customer_update(
    *, customer: Customer, tags: list[str] | None = None, **fields: Any
) -> Customer:
    """Change the given fields of a customer; `tags`, when given, replaces the tags."""
    unknown = set(fields) - _COLUMN_FIELDS
    if unknown:
        raise TypeError(f"customer_update() got unknown fields: {sorted(unknown)}")
    _erased_refuse_locked(customer)
    if "email" in fields:
        fields["email"] = _normalise_email(fields["email"])
    for name, value in fields.items():
        setattr(customer, name, value)
    if fields:
        _customer_save(customer, update_fields=[*fields, "updated_at"])
    if tags is not None:
        _tags_set(customer=customer, tags=tags)
    # What a customer is can move them between segments just as what they do can.
    contact_announce(contacts=[ContactRef(customer.pk, None)])
    return customer


@transaction.atomic
def consent_record(
    *,
    customer: Customer,
    channel: str,
    granted: bool,
    source: str,
    wording: str,
    recorded_by: AbstractBaseUser | None = None,
    recorded_at=None,
) -> Consent:
    """Append a consent decision to the customer's ledger."""
    _erased_refuse_locked(customer)
    if not wording.strip():
        raise ValidationError(
            {
                "wording": ValidationError(
                    _("Record the exact wording the customer agreed to."),
                    code="wording_required",
                )
            }
        )
    consent = Consent(
        customer=customer,
        channel=channel,
        status=Consent.Status.GRANTED if granted else Consent.Status.WITHDRAWN,
        source=source,
        wording=wording.strip(),
        recorded_by=recorded_by,
        recorded_at=recorded_at or timezone.now(),
    )
    consent.full_clean(exclude=["customer", "recorded_by"])
    consent.save()
    contact_announce(contacts=[ContactRef(customer.pk, None)])
    return consent
