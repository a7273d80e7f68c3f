"""factory_boy factories for the segment models.

They write rows directly so tests can set up any state (a segment with a given
size, history rows); behaviour under test goes through the services.
"""

import factory
from django.utils import timezone

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


class SegmentMembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SegmentMembership

    segment = factory.SubFactory(SegmentFactory)
    customer = factory.SubFactory(CustomerFactory)
    entered_at = factory.LazyFunction(timezone.now)


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
