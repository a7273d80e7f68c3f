"""Triggered campaigns read segment entries by time with an overlap: an entry that
commits late (with a lower id than one already read) is still greeted, and no
entry is greeted twice however consumes and commits interleave."""

import contextlib
import threading
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Count, Max
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from campaigns.models import CampaignRun, Delivery
from campaigns.services.runs import trigger_consume
from campaigns.services.sending import runs_finish
from segments.models import Segment, SegmentEvent
from tests.campaigns.conftest import entry_make, triggered_make
from tests.campaigns.test_sending import customers_in


@pytest.fixture(autouse=True)
def no_rate_limit(settings):
    settings.CAMPAIGN_RATE_LIMITS = {}


def delivered(campaign) -> dict[int, int]:
    return dict(
        Delivery.objects.filter(campaign=campaign)
        .values("customer_id")
        .annotate(n=Count("pk"))
        .values_list("customer_id", "n")
    )


@pytest.fixture
def segment(db):
    return Segment.objects.create(name="Newcomers", slug="newcomers", rules={})


def test_an_entry_with_a_lower_id_seen_after_a_higher_one_is_greeted_once(segment):
    ann, bob = customers_in(segment, 2, prefix="t")
    start = timezone.now()
    campaign = triggered_make(segment, trigger_read_from=start - timedelta(minutes=1))
    base = (SegmentEvent.objects.aggregate(last=Max("pk"))["last"] or 0) + 1000
    # Ann's entry was recorded first (lower id), Bob's second; Bob's transaction
    # commits first and is consumed before Ann's becomes visible.
    entry_make(segment, bob, start, pk=base + 2)
    assert trigger_consume(campaign_id=campaign.pk, now=start) == 1

    entry_make(segment, ann, start, pk=base + 1)
    assert (
        trigger_consume(campaign_id=campaign.pk, now=start + timedelta(minutes=1)) == 1
    )
    assert (
        trigger_consume(campaign_id=campaign.pk, now=start + timedelta(minutes=2)) == 0
    )

    assert delivered(campaign) == {ann.pk: 1, bob.pk: 1}


def test_entries_before_the_overlap_are_not_read_again(segment, settings):
    settings.CAMPAIGN_TRIGGER_OVERLAP_MINUTES = 60
    (ann,) = customers_in(segment, 1, prefix="t")
    start = timezone.now()
    campaign = triggered_make(segment, trigger_read_from=start - timedelta(minutes=1))

    trigger_consume(campaign_id=campaign.pk, now=start + timedelta(hours=2))

    campaign.refresh_from_db()
    assert campaign.trigger_read_from == start + timedelta(hours=1)
    # An entry that occurred before the window and became visible only now is
    # beyond what the overlap covers (a transaction longer than an hour).
    entry_make(segment, ann, start)
    assert trigger_consume(campaign_id=campaign.pk, now=start + timedelta(hours=2)) == 0


# Each entry: which customer enters, and how many consumes pass between the
# moment it is recorded (its id and occurred_at) and its commit.
ENTRIES = st.lists(
    st.tuples(st.integers(0, 4), st.integers(0, 3)), min_size=1, max_size=12
)


@hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(entries=ENTRIES)
def test_no_entry_is_missed_or_greeted_twice_across_interleaved_commits(
    segment, entries
):
    with transaction.atomic():
        customers = customers_in(segment, 5, prefix="h")
        start = timezone.now()
        campaign = triggered_make(segment, trigger_read_from=start)
        base = (SegmentEvent.objects.aggregate(last=Max("pk"))["last"] or 0) + 1000
        pending: dict[int, list[tuple[int, int, object]]] = {}
        for step, (who, lag) in enumerate(entries):
            # Ids in the order the entries were recorded; visible `lag` steps on.
            pending.setdefault(step + lag, []).append(
                (base + step, who, start + timedelta(minutes=step))
            )
        planned = 0
        last_step = len(entries) + 3
        for step in range(last_step + 1):
            for pk, who, occurred_at in pending.get(step, []):
                entry_make(segment, customers[who], occurred_at, pk=pk)
            now = start + timedelta(minutes=step, seconds=30)
            planned += trigger_consume(campaign_id=campaign.pk, now=now)

        entered = {customers[who].pk for who, _lag in entries}
        assert delivered(campaign) == dict.fromkeys(entered, 1)
        assert planned == len(entered)
        transaction.set_rollback(True)


@contextlib.contextmanager
def uncommitted(write):
    """Run `write` in a transaction of another connection, and commit it only
    when the block ends; yield what `write` returned."""
    done, release, result = threading.Event(), threading.Event(), []

    def writer():
        try:
            with transaction.atomic():
                result.append(write())
                done.set()
                release.wait(10)
        finally:
            connection.close()
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert done.wait(10)
        assert result, "the other transaction failed"
        yield result[0]
    finally:
        release.set()
        thread.join(10)


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="two writers at once: PostgreSQL"
)
def test_an_entry_committed_late_by_another_transaction_is_greeted(segment):
    ann, bob = customers_in(segment, 2, prefix="t")
    campaign = triggered_make(
        segment, trigger_read_from=timezone.now() - timedelta(minutes=1)
    )
    # Ann's entry takes the lower id, but its transaction commits last.
    with uncommitted(lambda: entry_make(segment, ann, timezone.now())) as late:
        bob_id = entry_make(segment, bob, timezone.now()).pk
        assert late.pk < bob_id
        assert trigger_consume(campaign_id=campaign.pk) == 1

    assert trigger_consume(campaign_id=campaign.pk) == 1
    assert trigger_consume(campaign_id=campaign.pk) == 0
    assert delivered(campaign) == {ann.pk: 1, bob.pk: 1}


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="two writers at once: PostgreSQL"
)
def test_runs_finish_leaves_a_run_alone_while_a_consume_adds_to_it(segment):
    ann, bob = customers_in(segment, 2, prefix="t")
    start = timezone.now()
    campaign = triggered_make(segment, trigger_read_from=start - timedelta(minutes=1))
    # Given today's run, whose one delivery so far was sent.
    entry_make(segment, ann, start)
    assert trigger_consume(campaign_id=campaign.pk) == 1
    Delivery.objects.update(status=Delivery.Status.SENT, sent_at=timezone.now())
    run = CampaignRun.objects.get(campaign=campaign)
    entry_make(segment, bob, timezone.now())
    # A consume that has planned Bob's row into the run and not yet committed.
    with uncommitted(lambda: trigger_consume(campaign_id=campaign.pk)) as planned:
        # When runs are finished meanwhile, the run being added to is left open.
        assert runs_finish() == 0

    run.refresh_from_db()
    assert planned == 1
    assert run.status != CampaignRun.Status.FINISHED
    assert run.deliveries.filter(status=Delivery.Status.PLANNED).count() == 1
    # Once Bob's message is out, the next finish closes it.
    Delivery.objects.update(status=Delivery.Status.SENT, sent_at=timezone.now())
    assert runs_finish() == 1
