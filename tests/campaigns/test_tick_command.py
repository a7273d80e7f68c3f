"""`manage.py campaigns_tick`: beat's minute on demand (a server without beat)."""

import io

import pytest
from django.core.management import call_command

from campaigns.models import Campaign, Delivery
from campaigns.services.campaigns import campaign_schedule
from segments.models import Segment
from tests.campaigns.conftest import campaign_make, message_make
from tests.campaigns.test_sending import customers_in


@pytest.fixture(autouse=True)
def no_rate_limit(settings):
    settings.CAMPAIGN_RATE_LIMITS = {}


@pytest.fixture
def segment(db):
    return Segment.objects.create(name="Regulars", slug="regulars", rules={})


def tick() -> str:
    out = io.StringIO()
    call_command("campaigns_tick", stdout=out)
    return out.getvalue()


def test_a_campaign_scheduled_for_now_is_sent_by_one_tick_and_only_once(
    segment,
    smtp_server,
    eager_celery,
):
    customers_in(segment, 4)
    campaign = campaign_make(channels=["email"], holdout_percent=0)
    campaign.include_segments.add(segment)
    message_make(campaign)
    campaign_schedule(campaign=campaign, user=None)

    output = tick()

    assert len(smtp_server.messages) == 4
    assert Delivery.objects.filter(campaign=campaign, status="sent").count() == 4
    assert "sent 4" in output
    # A second tick finishes the run and sends nothing again.
    tick()
    assert len(smtp_server.messages) == 4
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENT
