"""Rows the channel tests build directly: a campaign, a run, its deliveries."""

from itertools import count

import pytest
from django.utils import timezone

from campaigns.channels import Outgoing
from campaigns.models import Campaign, CampaignRun, Delivery, Message
from crm.models import Consent
from crm.services import consent_record

_numbers = count(1)


@pytest.fixture
def outbox(settings, tmp_path):
    """A CAMPAIGN_OUTBOX_DIR of the test's own."""
    settings.CAMPAIGN_OUTBOX_DIR = tmp_path / "outbox"
    return settings.CAMPAIGN_OUTBOX_DIR


def campaign_run(slug: str = "", key: str = "2027-01-04") -> CampaignRun:
    slug = slug or f"campaign-{next(_numbers)}"
    campaign = Campaign.objects.create(
        name=slug.replace("-", " ").title(), slug=slug, status=Campaign.Status.SENDING
    )
    return CampaignRun.objects.create(campaign=campaign, key=key, due_at=timezone.now())


def message_for(run: CampaignRun, channel: str, name: str = "") -> Message:
    return Message.objects.get_or_create(
        campaign=run.campaign,
        name=name or f"{channel} message",
        defaults={"channel": channel, "subject": "Sale", "body_text": "Shoes -20%"},
    )[0]


def delivery(
    run: CampaignRun,
    customer,
    channel: str,
    status: str = Delivery.Status.SENDING,
    message: Message | None = None,
) -> Delivery:
    return Delivery.objects.create(
        campaign=run.campaign,
        run=run,
        customer=customer,
        channel=channel,
        message=message or message_for(run, channel),
        status=status,
        planned_at=timezone.now(),
    )


def grant(customer, channel: str, granted: bool = True) -> Consent:
    return consent_record(
        customer=customer,
        channel=channel,
        granted=granted,
        source=Consent.Source.ONLINE,
        wording=f"Yes, reach me by {channel}.",
    )


def outgoing(item: Delivery, address: str = "", body: str = "Shoes -20%") -> Outgoing:
    return Outgoing(
        delivery_id=item.pk,
        customer_id=item.customer_id,
        channel=item.channel,
        address=address,
        subject="Sale",
        body_text=body,
    )
