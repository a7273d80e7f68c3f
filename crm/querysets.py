"""Chainable filters for the CRM models."""

from django.db import models
from django.db.models import (
    BooleanField,
    Case,
    ExpressionWrapper,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Lower

# How consent entries supersede each other: the newest recorded entry is the
# customer's current consent on its channel; the later id breaks a tie.
CONSENT_NEWEST_FIRST = ("-recorded_at", "-id")


def channel_address(channel: str, *, customer: str = "") -> Q:
    """The customer holds an address a message on `channel` needs (push: a live
    device token the app registered).

    `customer` is the path to the customer from the model queried ("customer__"
    from the consent ledger, "" from customers).
    """
    from .models import PushToken

    email = Q(**{f"{customer}email__isnull": False}) & ~Q(**{f"{customer}email": ""})
    phone = ~Q(**{f"{customer}phone": ""})
    addresses = {
        "email": email,
        "sms": phone,
        # Uncorrelated, so it holds inside aggregates over subqueries too.
        "push": Q(
            **{
                f"{customer}pk__in": PushToken.objects.filter(
                    revoked_at__isnull=True
                ).values("customer_id")
            }
        ),
        # Ad platforms match audiences on an email address or a phone number.
        "social_ads": email | phone,
        "post": ~Q(**{f"{customer}address": ""})
        & ~Q(**{f"{customer}postal_code": ""})
        & ~Q(**{f"{customer}city": ""}),
    }
    return addresses[channel]


def current_consent(channel: str, customer: str = "pk") -> Subquery:
    """The status of the outer query's customer's latest consent entry on
    `channel` (None without one); `customer` is the path to its id."""
    from .models import Consent

    latest = Consent.objects.filter(
        customer=OuterRef(customer), channel=channel
    ).order_by(*CONSENT_NEWEST_FIRST)
    return Subquery(latest.values("status")[:1])


def active_cards(customer: str = "pk") -> "models.QuerySet":
    """The active loyalty cards of the outer query's customer (`customer` is the
    path to its id)."""
    from .models import LoyaltyCard

    return LoyaltyCard.objects.filter(
        customer_id=OuterRef(customer), status=LoyaltyCard.Status.ACTIVE
    )


def best_card_tier(customer: str = "pk") -> Subquery:
    """The highest tier among the customer's active cards (None without one):
    the segment field loyalty_tier and the message field tier alike."""
    from .models import LoyaltyCard

    ranks = {tier: rank for rank, tier in enumerate(LoyaltyCard.Tier.values)}
    return Subquery(
        active_cards(customer)
        .annotate(
            rank=Case(
                *[When(tier=tier, then=Value(rank)) for tier, rank in ranks.items()],
                output_field=IntegerField(),
            )
        )
        .order_by("-rank", "pk")
        .values("tier")[:1]
    )


def card_points(customer: str = "pk") -> Subquery:
    """The points on the customer's active cards together (None without one)."""
    return Subquery(
        active_cards(customer)
        .order_by()
        .values("customer_id")
        .annotate(total=Sum("points"))
        .values("total")[:1],
        output_field=IntegerField(),
    )


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
        return self.annotate(**{f"{channel}_consent": current_consent(channel)})

    def with_reach(self, channels: list[str]) -> "CustomerQuerySet":
        """Annotate `<channel>_reachable` for each channel: the current consent is
        a grant and the customer holds the channel's address."""
        from .models import Consent

        queryset = self
        for channel in channels:
            queryset = queryset.with_consent(channel)
            reachable = Q(
                **{f"{channel}_consent": Consent.Status.GRANTED}
            ) & channel_address(channel)
            queryset = queryset.annotate(
                **{
                    f"{channel}_reachable": ExpressionWrapper(
                        reachable, output_field=BooleanField()
                    )
                }
            )
        return queryset

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
        ).order_by(*CONSENT_NEWEST_FIRST)
        return self.filter(pk=Subquery(newer.values("pk")[:1]))


class ProductQuerySet(models.QuerySet):
    def active(self) -> "ProductQuerySet":
        return self.filter(is_active=True)


class ReceiptQuerySet(models.QuerySet):
    def completed(self) -> "ReceiptQuerySet":
        return self.filter(status="completed")
