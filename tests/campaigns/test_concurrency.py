"""Double submissions on real PostgreSQL transactions in separate threads."""

import pytest
from django.db import connection

from campaigns.models import Campaign
from campaigns.services.campaigns import campaign_create, campaign_schedule
from tests.crm.test_concurrency import run_concurrently
from tests.segments.factories import SegmentFactory

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="needs concurrent writers"
    ),
]


def test_eight_simultaneous_schedules_schedule_once(user):
    campaign = campaign_create(
        created_by=user,
        name="Spring sale",
        audience={"include_segments": [SegmentFactory()]},
        channels=["email"],
        messages=[{"name": "hello", "channel": "email", "body_text": "Hello"}],
    )

    results = run_concurrently(
        8,
        lambda _index: campaign_schedule(
            campaign=Campaign.objects.get(pk=campaign.pk), user=user
        ),
    )

    assert [r for r in results if isinstance(r, Exception)] == []
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    assert campaign.changes.filter(action="schedule").count() == 1
    assert {r.next_run_at for r in results} == {campaign.next_run_at}
