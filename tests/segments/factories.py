"""factory_boy factories for the segment models.

They write rows directly so tests can set up any state (a segment with a given
size, history rows); behaviour under test goes through the services.
"""

from dataclasses import dataclass
from datetime import datetime

import factory
from django.db.models import F
from django.utils import timezone

from crm.models import Customer
from segments import models
from tests.crm.factories import CustomerFactory


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Segment
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Segment {n}")
    slug = factory.Sequence(lambda n: f"segment-{n}")
    kind = models.Segment.Kind.BEHAVIOURAL
    rules = factory.LazyFunction(lambda: {"field": "orders", "op": "gte", "value": 1})


@dataclass
class Membership:
    segment: models.Segment
    customer: Customer
    entered_at: datetime | None

    @property
    def customer_id(self) -> int:
        return self.customer.pk


def membership_create(
    *,
    segment: models.Segment | None = None,
    customer: Customer | None = None,
    entered_at: datetime | None = None,
    **segment_fields,
) -> Membership:
    """Put a customer in a segment the way the engine stores it: the segment's id in
    the customer's state array, plus an "entered" history row at `entered_at`."""
    segment = segment or SegmentFactory(
        **{k.removeprefix("segment__"): v for k, v in segment_fields.items()}
    )
    customer = customer or CustomerFactory()
    state, _created = models.CustomerSegmentState.objects.get_or_create(
        customer=customer
    )
    if segment.pk not in state.segment_ids:
        state.segment_ids = sorted({*state.segment_ids, segment.pk})
        state.save(update_fields=["segment_ids"])
        models.Segment.objects.filter(pk=segment.pk).update(size=F("size") + 1)
        segment.size += 1
    if entered_at is not None:
        SegmentEventFactory(segment=segment, customer=customer, occurred_at=entered_at)
    return Membership(segment=segment, customer=customer, entered_at=entered_at)


def memberships() -> set[tuple[int, int]]:
    """Every current (segment id, customer id) pair, from the engine's arrays."""
    return {
        (segment_id, customer_id)
        for customer_id, ids in models.CustomerSegmentState.objects.values_list(
            "customer_id", "segment_ids"
        )
        for segment_id in ids
    }


def member_ids(segment: models.Segment) -> set[int]:
    return {c for s, c in memberships() if s == segment.pk}


class SegmentEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SegmentEvent

    segment = factory.SubFactory(SegmentFactory)
    customer = factory.SubFactory(CustomerFactory)
    kind = models.SegmentEvent.Kind.ENTERED
    cause = models.SegmentEvent.Cause.RECOMPUTE
    occurred_at = factory.LazyFunction(timezone.now)


class SegmentSizeSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SegmentSizeSnapshot

    segment = factory.SubFactory(SegmentFactory)
    date = factory.LazyFunction(timezone.localdate)
    size = 0
