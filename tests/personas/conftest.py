from datetime import timedelta

import pytest
from django.utils import timezone

from crm.services import LineInput, receipt_record
from segments.models import Segment


@pytest.fixture(autouse=True)
def only_test_segments(db):
    # The default RFM segments are not what these tests are about.
    Segment.objects.update(is_active=False)


def buy(store, customer, *, sku="SHOE-1", quantity=1, days_ago=0, channel="store"):
    return receipt_record(
        store=store,
        customer=customer,
        payment_method="card" if channel != "online" else "online",
        channel=channel,
        lines=[LineInput(sku, quantity)],
        purchased_at=timezone.now() - timedelta(days=days_ago),
    )
