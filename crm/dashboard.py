"""The staff home page's core figures: customers, activity, revenue and reach.

Every figure is one set-based aggregate over the whole base, kept in the cache for
`DASHBOARD_CACHE_SECONDS` so the page stays cheap at a million customers; the page
says when its figures were computed. The apps built on the core add their cards
through `crm.hooks.dashboard_panels` and cache theirs with `figures_cached`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Q, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .models import Channel, Consent, Customer, CustomerStats, Receipt
from .querysets import CONSENT_NEWEST_FIRST, channel_address

T = TypeVar("T")

ACTIVE_WINDOWS = (30, 90)
REVENUE_DAYS = 30


def dashboard_cache_seconds() -> int:
    return settings.LOYALIST_DASHBOARD_CACHE_SECONDS


@dataclass(frozen=True)
class Cached:
    """Figures with the moment they were computed."""

    figures: Any
    computed_at: datetime


def figures_cached(name: str, compute: Callable[[datetime], T]) -> Cached:
    """`compute(now)`'s result from the cache, computed and stored when missing.

    The key holds the local date, so figures of yesterday are never shown today.
    """
    now = timezone.now()
    key = f"dashboard:{name}:{timezone.localdate(now).isoformat()}"
    cached = cache.get(key)
    if cached is None:
        cached = Cached(figures=compute(now), computed_at=now)
        cache.set(key, cached, dashboard_cache_seconds())
    return cached


def percentage_change(current: Decimal | int, previous: Decimal | int) -> float | None:
    if not previous:
        return None
    return float((Decimal(current) - Decimal(previous)) / Decimal(previous) * 100)


# Channels and the address a message on them needs, seen from the consent ledger
# (one definition with the member export's: crm.querysets.channel_address).
CHANNEL_ADDRESSES: dict[str, Q] = {
    channel: channel_address(channel, customer="customer__") for channel in Channel
}


@dataclass
class ChannelReach:
    channel: str
    label: str
    consented: int
    reachable: int


@dataclass
class CoreFigures:
    customers: int
    active: dict[int, int]
    revenue_current: Decimal
    revenue_previous: Decimal
    orders_current: int
    orders_previous: int
    reach: list[ChannelReach] = field(default_factory=list)

    @property
    def revenue_change(self) -> float | None:
        return percentage_change(self.revenue_current, self.revenue_previous)


def customer_activity(*, now: datetime) -> tuple[int, dict[int, int]]:
    """All customers, and those who bought within each of ACTIVE_WINDOWS days."""
    customers = Customer.objects.count()
    longest = max(ACTIVE_WINDOWS)
    active = CustomerStats.objects.filter(
        last_purchase_at__gte=now - timedelta(days=longest),
        last_purchase_at__lte=now,
    ).aggregate(
        **{
            f"days_{days}": Count(
                "pk", filter=Q(last_purchase_at__gte=now - timedelta(days=days))
            )
            for days in ACTIVE_WINDOWS
        }
    )
    return customers, {days: active[f"days_{days}"] for days in ACTIVE_WINDOWS}


def revenue_periods(*, now: datetime, days: int = REVENUE_DAYS) -> dict[str, Any]:
    """Completed receipts' revenue and count: the last `days`, the `days` before."""
    start = now - timedelta(days=days)
    current = Q(purchased_at__gte=start)
    figures = (
        Receipt.objects.completed()
        .filter(purchased_at__gte=now - timedelta(days=2 * days), purchased_at__lt=now)
        .aggregate(
            revenue_current=Sum("total", filter=current),
            revenue_previous=Sum("total", filter=~current),
            orders_current=Count("pk", filter=current),
            orders_previous=Count("pk", filter=~current),
        )
    )
    for key in ("revenue_current", "revenue_previous"):
        figures[key] = figures[key] or Decimal("0")
    return figures


def channel_reach() -> list[ChannelReach]:
    """Per channel: customers whose current consent is a grant, and of those the ones
    with an address for the channel.

    The current consent is the newest ledger entry per customer and channel, ranked
    in one pass over the ledger's index rather than looked up per customer.
    """
    ranked = Consent.objects.annotate(
        rank=Window(
            RowNumber(),
            partition_by=[F("customer_id"), F("channel")],
            order_by=list(CONSENT_NEWEST_FIRST),
        )
    ).filter(rank=1)
    aggregates: dict[str, Count] = {}
    for channel, address in CHANNEL_ADDRESSES.items():
        granted = Q(channel=channel, status=Consent.Status.GRANTED)
        aggregates[f"{channel}_consented"] = Count("pk", filter=granted)
        aggregates[f"{channel}_reachable"] = Count("pk", filter=granted & address)
    # Aggregated over the ranked rows themselves: joining them back to the ledger
    # by id would cost a lookup per current consent.
    counts = ranked.aggregate(**aggregates)
    return [
        ChannelReach(
            channel=channel,
            label=str(Channel(channel).label),
            consented=counts[f"{channel}_consented"],
            reachable=counts[f"{channel}_reachable"],
        )
        for channel in CHANNEL_ADDRESSES
    ]


def core_figures(*, now: datetime | None = None) -> CoreFigures:
    """The dashboard's core figures, computed now (four queries)."""
    now = now or timezone.now()
    customers, active = customer_activity(now=now)
    revenue = revenue_periods(now=now)
    return CoreFigures(
        customers=customers,
        active=active,
        reach=channel_reach(),
        **revenue,
    )
