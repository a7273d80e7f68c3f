"""Sending through a real SMTP server: each planned message once, consent checked
again, lost workers reported, pausing and resuming without repeats."""

from datetime import timedelta
from typing import ClassVar

import pytest
from django.utils import timezone

from campaigns.channels import ChannelBackend, backend_for
from campaigns.models import Campaign, CampaignRun, Delivery
from campaigns.services.planning import run_plan
from campaigns.services.runs import campaign_run_due, trigger_consume
from campaigns.services.sending import (
    batch_send,
    channel_drain,
    deliveries_claim,
    deliveries_resend_unknown,
    leases_expire,
    runs_finish,
)
from campaigns.tasks import campaigns_tick_task
from crm.models import Consent, Contact, Customer
from crm.services import consent_record
from segments.models import CustomerSegmentState, Segment
from tests.campaigns.conftest import (
    campaign_make,
    entry_make,
    message_make,
    triggered_make,
)
from tests.crm.factories import UserFactory


@pytest.fixture(autouse=True)
def no_rate_limit(settings):
    settings.CAMPAIGN_RATE_LIMITS = {}


@pytest.fixture
def segment(db):
    return Segment.objects.create(name="Regulars", slug="regulars", rules={})


def customers_in(segment, count, *, consent=True, prefix="c"):
    customers = Customer.objects.bulk_create(
        Customer(email=f"{prefix}{i}@example.com", first_name=f"Ann{i}")
        for i in range(count)
    )
    CustomerSegmentState.objects.bulk_create(
        CustomerSegmentState(customer=c, segment_ids=[segment.pk]) for c in customers
    )
    if consent:
        Consent.objects.bulk_create(
            Consent(
                customer=c,
                channel="email",
                status="granted",
                source="store",
                wording="yes",
                recorded_at=timezone.now() - timedelta(days=1),
            )
            for c in customers
        )
    return customers


def sending_campaign(segment, **fields):
    fields.setdefault("channels", ["email"])
    fields.setdefault("holdout_percent", 0)
    campaign = campaign_make(status=Campaign.Status.SENDING, **fields)
    campaign.include_segments.add(segment)
    message_make(campaign)
    return campaign


def planned_run(campaign, key="send"):
    run = CampaignRun.objects.create(
        campaign=campaign, key=key, due_at=timezone.now() - timedelta(minutes=1)
    )
    run_plan(run=run)
    return run


def test_every_planned_email_arrives_once_personalised(segment, smtp_server):
    customers_in(segment, 5)
    campaign = sending_campaign(segment)
    planned_run(campaign)

    assert channel_drain(channel="email", seconds=30) == 5

    assert len(smtp_server.messages) == 5
    ids = [m["Message-ID"] for m in smtp_server.messages]
    assert len(set(ids)) == 5
    first = smtp_server.messages[0]
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first["Subject"].startswith("Hello Ann")
    assert Delivery.objects.filter(status="sent").count() == 5
    sent = Delivery.objects.first()
    assert sent.provider_message_id in ids
    assert sent.sent_at is not None
    # Each message received is a contact, which segments can count.
    assert Contact.objects.filter(kind=Contact.Kind.MESSAGE_RECEIVED).count() == 5
    # Nothing is left to send: a second drain sends nothing.
    assert channel_drain(channel="email", seconds=5) == 0
    assert len(smtp_server.messages) == 5


def test_consent_withdrawn_after_planning_stops_the_message(segment, smtp_server):
    ann, bob = customers_in(segment, 2)
    campaign = sending_campaign(segment)
    planned_run(campaign)
    consent_record(
        customer=bob,
        channel="email",
        granted=False,
        source=Consent.Source.ONLINE,
        wording="no more",
    )

    channel_drain(channel="email", seconds=10)

    assert [m["To"] for m in smtp_server.messages] == [ann.email]
    skipped = Delivery.objects.get(customer=bob)
    assert skipped.status == Delivery.Status.SKIPPED
    assert "consent withdrawn" in skipped.reason


def test_erased_customer_is_never_contacted(segment, smtp_server):
    (ann,) = customers_in(segment, 1)
    campaign = sending_campaign(segment)
    planned_run(campaign)
    Customer.objects.filter(pk=ann.pk).update(erased_at=timezone.now())

    channel_drain(channel="email", seconds=10)

    assert smtp_server.messages == []
    assert Delivery.objects.get().status == Delivery.Status.SKIPPED


def test_a_paused_campaign_sends_nothing_and_resumes_where_it_stopped(
    segment, smtp_server, settings
):
    settings.CAMPAIGN_BATCH_SIZE = 3
    customers_in(segment, 7)
    campaign = sending_campaign(segment)
    planned_run(campaign)
    batch_send(channel="email")
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)

    assert batch_send(channel="email") is None
    assert len(smtp_server.messages) == 3

    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SENDING)
    channel_drain(channel="email", seconds=10)

    recipients = [m["To"] for m in smtp_server.messages]
    assert len(recipients) == len(set(recipients)) == 7


def test_a_lost_worker_leaves_unknown_rows_that_are_resent_only_on_purpose(
    segment, smtp_server
):
    customers_in(segment, 4)
    campaign = sending_campaign(segment)
    planned_run(campaign)
    # A worker claims two rows and dies before sending or reporting.
    claimed = deliveries_claim(channel="email", limit=2)
    later = timezone.now() + timedelta(hours=1)

    assert leases_expire(now=later) == 2
    channel_drain(channel="email", seconds=10)

    assert len(smtp_server.messages) == 2
    unknown = Delivery.objects.filter(status=Delivery.Status.UNKNOWN)
    assert set(unknown.values_list("pk", flat=True)) == set(claimed)

    marketer = UserFactory()
    assert deliveries_resend_unknown(campaign=campaign, user=marketer) == 2
    channel_drain(channel="email", seconds=10)
    assert len(smtp_server.messages) == 4
    assert campaign.changes.get().action == "resend_unknown"


def test_a_refused_address_fails_alone(segment, smtp_server):
    _ann, bob, _cas = customers_in(segment, 3)
    smtp_server.refuse = {bob.email}
    campaign = sending_campaign(segment)
    planned_run(campaign)

    result = batch_send(channel="email")

    assert (result.sent, result.failed) == (2, 1)
    refused = Delivery.objects.get(customer=bob)
    assert refused.status == Delivery.Status.FAILED
    assert refused.error
    bounce = Contact.objects.get(kind=Contact.Kind.EMAIL_BOUNCE)
    assert bounce.customer_id == bob.pk
    assert bounce.payload["delivery"] == refused.pk


def test_temporary_failures_are_retried_later_then_given_up(
    segment, smtp_server, settings
):
    settings.CAMPAIGN_MAX_ATTEMPTS = 2
    (ann,) = customers_in(segment, 1)
    campaign = sending_campaign(segment)
    planned_run(campaign)
    smtp_server.reply_for = {ann.email: "451 4.3.0 Try again later"}

    result = batch_send(channel="email")
    assert result.retried == 1
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PLANNED
    assert delivery.planned_at > timezone.now()

    Delivery.objects.update(planned_at=timezone.now() - timedelta(seconds=1))
    result = batch_send(channel="email")
    assert result.failed == 1
    assert Delivery.objects.get().status == Delivery.Status.FAILED


def test_a_send_the_server_may_have_taken_is_unknown_and_never_repeated_by_itself(
    segment, smtp_server, eager_celery
):
    # Given a batch where the server defers one message (451), rejects one
    # (550), and takes in the content of one and hangs up before replying.
    ann, bob, cas, dan, eve = customers_in(segment, 5)
    smtp_server.reply_for = {
        bob.email: "451 4.3.0 Try again later",
        cas.email: "550 5.7.1 Message rejected",
    }
    smtp_server.drop_for = {dan.email}
    campaign = sending_campaign(segment)
    planned_run(campaign)

    result = batch_send(channel="email")

    status = dict(Delivery.objects.values_list("customer__email", "status"))
    assert status == {
        ann.email: Delivery.Status.SENT,
        bob.email: Delivery.Status.PLANNED,
        cas.email: Delivery.Status.FAILED,
        dan.email: Delivery.Status.UNKNOWN,
        # After Dan's message the connection was gone: Eve's never went.
        eve.email: Delivery.Status.PLANNED,
    }
    assert (result.sent, result.failed, result.retried, result.unknown) == (1, 1, 2, 1)
    assert smtp_server.dropped == [[dan.email]]
    assert "may have accepted" in Delivery.objects.get(customer=dan).error
    assert not Contact.objects.filter(customer=dan).exists()

    # When the next ticks come, after the retry backoff has passed.
    smtp_server.reply_for = {}
    smtp_server.drop_for = set()
    campaigns_tick_task()
    Delivery.objects.filter(status=Delivery.Status.PLANNED).update(
        planned_at=timezone.now() - timedelta(seconds=1)
    )
    campaigns_tick_task()
    campaigns_tick_task()

    # Then the deferred ones are sent, and Dan's is never sent again by itself.
    assert [m["To"] for m in smtp_server.messages] == [ann.email, bob.email, eve.email]
    assert smtp_server.dropped == [[dan.email]]
    assert Delivery.objects.get(customer=dan).status == Delivery.Status.UNKNOWN
    # Until a person decides a possible duplicate beats a possible miss.
    assert deliveries_resend_unknown(campaign=campaign, user=UserFactory()) == 1
    campaigns_tick_task()
    assert [m["To"] for m in smtp_server.messages][-1] == dan.email


class BackendBreakingMidBatch(ChannelBackend):
    """A provider's client that hands over two messages, then raises."""

    channel = "email"
    handed_over: ClassVar[list[int]] = []

    def send(self, messages):
        for message in messages[:2]:
            self.handed_over.append(message.delivery_id)
        raise RuntimeError("provider client crashed")


def test_an_exception_mid_batch_makes_the_batch_unknown(segment, settings):
    settings.CAMPAIGN_CHANNEL_BACKENDS = {
        **settings.CAMPAIGN_CHANNEL_BACKENDS,
        "email": f"{__name__}.BackendBreakingMidBatch",
    }
    backend_for.cache_clear()
    try:
        customers_in(segment, 3)
        campaign = sending_campaign(segment)
        planned_run(campaign)

        result = batch_send(channel="email")
        assert batch_send(channel="email") is None
    finally:
        backend_for.cache_clear()

    assert result.unknown == 3
    assert set(Delivery.objects.values_list("status", flat=True)) == {
        Delivery.Status.UNKNOWN
    }
    assert "failed mid-batch" in Delivery.objects.first().error
    assert len(BackendBreakingMidBatch.handed_over) == 2


def test_run_finishes_and_the_one_off_campaign_is_sent(segment, smtp_server):
    customers_in(segment, 2)
    campaign = campaign_make(
        status=Campaign.Status.SCHEDULED,
        channels=["email"],
        holdout_percent=0,
        next_run_at=timezone.now() - timedelta(seconds=5),
    )
    campaign.include_segments.add(segment)
    message_make(campaign)

    run = campaign_run_due(campaign_id=campaign.pk)
    assert campaign_run_due(campaign_id=campaign.pk) is None
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING
    channel_drain(channel="email", seconds=10)
    runs_finish()

    run.refresh_from_db()
    campaign.refresh_from_db()
    assert run.status == CampaignRun.Status.FINISHED
    assert campaign.status == Campaign.Status.SENT
    assert len(smtp_server.messages) == 2


def test_recurring_campaign_moves_to_its_next_occurrence(segment):
    customers_in(segment, 1)
    now = timezone.now()
    campaign = campaign_make(
        kind=Campaign.Kind.RECURRING,
        status=Campaign.Status.SCHEDULED,
        channels=["email"],
        recurrence="RRULE:FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
        next_run_at=now - timedelta(minutes=1),
    )
    campaign.include_segments.add(segment)
    message_make(campaign)

    run = campaign_run_due(campaign_id=campaign.pk, now=now)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ACTIVE
    assert campaign.next_run_at > now
    assert run.deliveries.count() == 1


def test_triggered_campaign_greets_each_entry_once_within_the_reentry_window(
    segment,
):
    ann, bob = customers_in(segment, 2, prefix="t")
    campaign = triggered_make(segment, trigger_reentry_days=30)
    now = timezone.now()
    for customer in (ann, bob):
        entry_make(segment, customer, now)

    assert trigger_consume(campaign_id=campaign.pk) == 2
    assert trigger_consume(campaign_id=campaign.pk) == 0
    # Ann leaves and comes back the next day: still within the window.
    entry_make(segment, ann, now + timedelta(days=1))
    assert trigger_consume(campaign_id=campaign.pk, now=now + timedelta(days=1)) == 0
    assert Delivery.objects.filter(campaign=campaign).count() == 2


def test_claiming_takes_the_same_queries_for_any_batch(
    segment, django_assert_max_num_queries
):
    customers_in(segment, 40)
    campaign = sending_campaign(segment)
    planned_run(campaign)
    # One query more per campaign in the batch (its own frequency cap), none
    # per row.
    for limit in (2, 30):
        with django_assert_max_num_queries(8):
            deliveries_claim(channel="email", limit=limit)
