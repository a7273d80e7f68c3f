"""Chainable filters for the CRM models."""

from django.db import models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Lower


class CustomerQuerySet(models.QuerySet):
    def by_email(self, email: str) -> "CustomerQuerySet":
        # customer_email_ci_unique indexes Lower(email); iexact (UPPER) cannot use it.
        return self.alias(email_lower=Lower("email")).filter(
            email_lower=email.strip().lower()
        )

    def with_stats(self) -> "CustomerQuerySet":
        return self.select_related("stats", "stats__favourite_category", "home_store")

    def with_consent(self, channel: str) -> "CustomerQuerySet":
        """Annotate `<channel>_consent` with the latest consent status, or None."""
        from .models import Consent

        latest = Consent.objects.filter(
            customer=OuterRef("pk"), channel=channel
        ).order_by("-recorded_at", "-id")
        return self.annotate(
            **{f"{channel}_consent": Subquery(latest.values("status")[:1])}
        )

    def consented(self, channel: str) -> "CustomerQuerySet":
        from .models import Consent

        return self.with_consent(channel).filter(
            **{f"{channel}_consent": Consent.Status.GRANTED}
        )


class ConsentQuerySet(models.QuerySet):
    def latest_per_channel(self) -> "ConsentQuerySet":
        """The current consent entries: the newest one per customer and channel."""
        newer = self.model.objects.filter(
            customer=OuterRef("customer"), channel=OuterRef("channel")
        ).order_by("-recorded_at", "-id")
        return self.filter(pk=Subquery(newer.values("pk")[:1]))


class ProductQuerySet(models.QuerySet):
    def active(self) -> "ProductQuerySet":
        return self.filter(is_active=True)


class ReceiptQuerySet(models.QuerySet):
    def completed(self) -> "ReceiptQuerySet":
        return self.filter(status="completed")
