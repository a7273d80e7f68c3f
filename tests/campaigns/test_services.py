"""The campaign lifecycle: drafts, scheduling checks, pause/resume, cancel, and
the change log of everything after scheduling."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.models import Campaign, CampaignChange, CampaignRun, Delivery, Message
from campaigns.services.campaigns import (
    campaign_cancel,
    campaign_create,
    campaign_delete,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_update,
)
from tests.campaigns.factories import (
    CampaignFactory,
    CampaignRunFactory,
    DeliveryFactory,
    MessageFactory,
    PersonaFactory,
)
from tests.segments.factories import SegmentEventFactory, SegmentFactory

pytestmark = pytest.mark.django_db
S = Campaign.Status

WEEKLY = "DTSTART:20270104T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO"


def email(name="hello", **fields):
    return {
        "name": name,
        "channel": "email",
        "subject": "Hi {{ first_name }}",
        "body_text": "Hello {{ first_name|default:'there' }}",
        **fields,
    }


def draft(user, **fields):
    fields.setdefault("audience", {"include_segments": [SegmentFactory()]})
    fields.setdefault("channels", ["email"])
    fields.setdefault("messages", [email()])
    return campaign_create(
        created_by=user, name=fields.pop("name", "Spring sale"), **fields
    )


def field_codes(exc: ValidationError) -> set[tuple[str, str]]:
    return {
        (field, error.code)
        for field, errors in exc.error_dict.items()
        for error in errors
    }


# Create ---------------------------------------------------------------------------


def test_create_makes_a_draft_with_audience_and_messages(user):
    vips, lapsed = SegmentFactory(slug="vips"), SegmentFactory(slug="lapsed")
    sarah = PersonaFactory(slug="sarah")
    campaign = draft(
        user,
        audience={
            "include_segments": [vips],
            "include_personas": [sarah],
            "exclude_segments": [lapsed],
        },
        messages=[email(), email("for-sarah", persona=sarah, weight=3)],
        costs={"email": "0.01"},
    )
    assert campaign.status == S.DRAFT
    assert campaign.slug == "spring-sale"
    assert campaign.created_by == user
    assert list(campaign.include_segments.all()) == [vips]
    assert list(campaign.include_personas.all()) == [sarah]
    assert list(campaign.exclude_segments.all()) == [lapsed]
    assert [(m.name, m.persona, m.weight) for m in campaign.messages.all()] == [
        ("hello", None, 1),
        ("for-sarah", sarah, 3),
    ]
    assert not campaign.changes.exists()


def test_editing_a_drafts_messages_keeps_the_rows_of_those_kept_by_name(user):
    campaign = draft(user, messages=[email(), email("second")])
    ids = dict(campaign.messages.values_list("name", "pk"))

    campaign_update(
        campaign=campaign,
        changed_by=user,
        messages=[email(subject="New subject"), email("third")],
    )

    after = {m.name: m for m in campaign.messages.all()}
    assert set(after) == {"hello", "third"}
    # The kept message is the same row, changed; the dropped one is gone.
    assert after["hello"].pk == ids["hello"]
    assert after["hello"].subject == "New subject"
    assert after["third"].pk not in ids.values()
    assert not Message.objects.filter(pk=ids["second"]).exists()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"channels": ["email", "fax"]}, ("channels", "invalid_channel")),
        (
            {"messages": [email(channel="pigeon")]},
            ("messages[0].channel", "invalid_channel"),
        ),
        (
            {"messages": [email(body_text="Hi {% if %}")]},
            ("messages[0].body_text", "template_syntax"),
        ),
        (
            {"messages": [email(subject="{{ first_name|nosuchfilter }}")]},
            ("messages[0].subject", "template_syntax"),
        ),
        (
            {"messages": [email(body_html="<p>{{ customer.password }}</p>")]},
            ("messages[0].body_html", "unknown_field"),
        ),
        ({"messages": [email(), email()]}, ("messages[1].name", "duplicate")),
        ({"messages": [email(body_text="")]}, ("messages[0].body_text", "required")),
        ({"recurrence": "RRULE:FREQ=NEVER"}, ("recurrence", "recurrence_invalid")),
        ({"holdout_percent": 95}, ("holdout_percent", "max_value")),
        ({"costs": {"fax": "1"}}, ("costs", "invalid_channel")),
        ({"costs": {"sms": "cheap"}}, ("costs", "invalid_cost")),
        ({"costs": {"sms": "-0.01"}}, ("costs", "invalid_cost")),
        ({"costs": {"sms": "Infinity"}}, ("costs", "invalid_cost")),
    ],
)
def test_create_refuses_bad_input_by_field(user, fields, expected):
    with pytest.raises(ValidationError) as caught:
        draft(user, **fields)
    assert expected in field_codes(caught.value)
    assert not Campaign.objects.exists()


def test_a_message_for_both_a_segment_and_a_persona_is_refused(user):
    with pytest.raises(ValidationError) as caught:
        draft(
            user, messages=[email(segment=SegmentFactory(), persona=PersonaFactory())]
        )
    assert ("messages[0].persona", "one_target") in field_codes(caught.value)


def test_slug_taken_is_refused(user):
    draft(user)
    with pytest.raises(ValidationError) as caught:
        draft(user)
    assert ("slug", "slug_taken") in field_codes(caught.value)


# Update ---------------------------------------------------------------------------


def test_a_draft_changes_entirely_without_a_change_log(user):
    campaign = draft(user)
    campaign_update(
        campaign=campaign,
        changed_by=user,
        channels=["sms", "email"],
        messages=[email("other", channel="sms")],
        holdout_percent=20,
    )
    campaign.refresh_from_db()
    assert campaign.channels == ["sms", "email"]
    assert campaign.holdout_percent == 20
    assert [m.name for m in campaign.messages.all()] == ["other"]
    assert not campaign.changes.exists()


def test_after_scheduling_only_safe_fields_change_and_each_change_is_logged(user):
    campaign = draft(user)
    campaign_schedule(campaign=campaign, user=user)

    with pytest.raises(ValidationError) as caught:
        campaign_update(campaign=campaign, changed_by=user, holdout_percent=50)
    assert ("holdout_percent", "campaign_not_draft") in field_codes(caught.value)
    assert "Cancel it" in caught.value.message_dict["holdout_percent"][0]

    campaign_update(
        campaign=campaign, changed_by=user, name="Spring sale!", costs={"email": "0.02"}
    )
    change = campaign.changes.get(action="update")
    assert change.changed_by == user
    assert change.details == {
        "name": {"old": "Spring sale", "new": "Spring sale!"},
        "costs": {"old": {}, "new": {"email": "0.02"}},
    }
    campaign.refresh_from_db()
    assert campaign.holdout_percent == 10
    assert campaign.name == "Spring sale!"


def test_an_update_that_changes_nothing_logs_nothing(user):
    campaign = draft(user)
    campaign_schedule(campaign=campaign, user=user)
    campaign_update(campaign=campaign, changed_by=user, name=campaign.name)
    assert not campaign.changes.filter(action="update").exists()


# Delete ---------------------------------------------------------------------------


def test_only_a_draft_can_be_deleted(user):
    campaign = draft(user)
    campaign_schedule(campaign=campaign, user=user)
    with pytest.raises(ValidationError, match="Only a draft can be deleted"):
        campaign_delete(campaign=campaign)
    other = draft(user, name="Other")
    campaign_delete(campaign=other)
    assert list(Campaign.objects.all()) == [campaign]


# Schedule -------------------------------------------------------------------------


def test_a_one_off_without_send_at_is_due_now(user):
    campaign = draft(user)
    before = timezone.now()
    campaign_schedule(campaign=campaign, user=user)
    campaign.refresh_from_db()
    assert campaign.status == S.SCHEDULED
    assert before <= campaign.next_run_at <= timezone.now()
    change = campaign.changes.get()
    assert (change.action, change.changed_by) == ("schedule", user)


def test_a_one_off_in_the_past_is_due_now_and_in_the_future_at_send_at(user):
    past = draft(user, name="Past", send_at=timezone.now() - timedelta(days=1))
    future_at = timezone.now() + timedelta(days=3)
    future = draft(user, name="Future", send_at=future_at)
    campaign_schedule(campaign=past, user=user)
    campaign_schedule(campaign=future, user=user)
    assert past.next_run_at > past.send_at
    assert future.next_run_at == future_at


def test_a_recurring_campaign_is_due_at_its_next_occurrence(user, settings):
    settings.TIME_ZONE = "Europe/Amsterdam"
    campaign = draft(user, kind="recurring", recurrence=WEEKLY)
    campaign_schedule(campaign=campaign, user=user)
    local = campaign.next_run_at.astimezone(timezone.get_default_timezone())
    assert campaign.status == S.SCHEDULED
    assert (local.weekday(), local.hour, local.minute) == (0, 9, 0)
    assert campaign.next_run_at > timezone.now()


def test_a_triggered_campaign_becomes_active_and_greets_only_later_entries(user):
    newcomers = SegmentFactory()
    before = [SegmentEventFactory(segment=newcomers) for _ in range(2)]
    SegmentEventFactory()
    campaign = draft(
        user, kind="triggered", trigger={"segment": newcomers, "delay_minutes": 5}
    )
    campaign_schedule(campaign=campaign, user=user)
    campaign.refresh_from_db()
    assert campaign.status == S.ACTIVE
    assert campaign.trigger_delay_minutes == 5
    assert campaign.next_run_at is None
    assert campaign.trigger_read_from > before[-1].occurred_at


def test_schedule_lists_everything_that_is_missing(user):
    campaign = draft(
        user,
        kind="recurring",
        audience={},
        channels=["email"],
        messages=[email(), email("by-text", channel="sms")],
    )
    with pytest.raises(ValidationError) as caught:
        campaign_schedule(campaign=campaign, user=user)
    assert field_codes(caught.value) == {
        ("audience", "audience_empty"),
        ("messages[1].channel", "channel_unreachable"),
        ("recurrence", "required"),
    }
    campaign.refresh_from_db()
    assert campaign.status == S.DRAFT
    assert not campaign.changes.exists()


def test_no_messages_and_no_trigger_segment_are_refused(user):
    campaign = draft(user, kind="triggered", messages=[])
    with pytest.raises(ValidationError) as caught:
        campaign_schedule(campaign=campaign, user=user)
    assert field_codes(caught.value) == {
        ("messages", "messages_empty"),
        ("trigger.segment", "trigger_required"),
    }


def test_a_channel_preferred_by_a_segment_or_persona_is_reachable(user):
    texters = SegmentFactory(channel_preference=["sms"])
    social = PersonaFactory(preferred_channels=["social", "phone"])
    campaign = draft(
        user,
        audience={"include_segments": [texters], "include_personas": [social]},
        channels=["email"],
        messages=[
            email(),
            email("text", channel="sms"),
            email("ads", channel="social_ads"),
        ],
    )
    campaign_schedule(campaign=campaign, user=user)
    assert campaign.status == S.SCHEDULED


def test_an_ended_recurrence_is_refused(user):
    campaign = draft(
        user,
        kind="recurring",
        recurrence="DTSTART:20200101T090000\nRRULE:FREQ=DAILY;COUNT=2",
    )
    with pytest.raises(ValidationError) as caught:
        campaign_schedule(campaign=campaign, user=user)
    assert ("recurrence", "recurrence_ended") in field_codes(caught.value)


def test_scheduling_twice_is_a_no_op(user):
    campaign = draft(user)
    campaign_schedule(campaign=campaign, user=user)
    first_run_at = campaign.next_run_at
    again = Campaign.objects.get(pk=campaign.pk)
    campaign_schedule(campaign=again, user=user)
    assert again.next_run_at == first_run_at
    assert campaign.changes.filter(action="schedule").count() == 1


def test_a_cancelled_campaign_cannot_be_scheduled(user):
    campaign = draft(user)
    campaign_cancel(campaign=campaign, user=user)
    with pytest.raises(ValidationError, match="Only a draft can be scheduled"):
        campaign_schedule(campaign=campaign, user=user)


# Pause, resume, cancel -------------------------------------------------------------


@pytest.mark.parametrize("running", [S.SCHEDULED, S.SENDING, S.ACTIVE])
def test_resume_returns_to_the_status_before_the_pause(user, running):
    campaign = CampaignFactory(status=running)
    campaign_pause(campaign=campaign, user=user)
    assert Campaign.objects.get(pk=campaign.pk).status == S.PAUSED
    campaign_pause(campaign=campaign, user=user)
    campaign_resume(campaign=campaign, user=user)
    assert Campaign.objects.get(pk=campaign.pk).status == running
    assert list(campaign.changes.order_by("id").values_list("action", "details")) == [
        ("pause", {"from": running}),
        ("resume", {"to": running}),
    ]


def test_a_draft_cannot_be_paused_nor_a_scheduled_one_resumed_twice(user):
    campaign = CampaignFactory(status=S.DRAFT)
    with pytest.raises(ValidationError, match="can be paused"):
        campaign_pause(campaign=campaign, user=user)
    with pytest.raises(ValidationError, match="Only a paused campaign"):
        campaign_resume(campaign=campaign, user=user)
    running = CampaignFactory(status=S.SCHEDULED)
    campaign_resume(campaign=running, user=user)
    assert not running.changes.exists()


def test_resuming_a_recurring_campaign_skips_the_occurrences_missed_while_paused(user):
    campaign = CampaignFactory(
        kind="recurring",
        status=S.PAUSED,
        recurrence="DTSTART:20250106T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO",
        next_run_at=datetime(2025, 1, 6, 8, tzinfo=UTC),
    )
    CampaignChange.objects.create(
        campaign=campaign, action="pause", details={"from": S.SCHEDULED}
    )
    campaign_resume(campaign=campaign, user=user)
    campaign.refresh_from_db()
    assert campaign.status == S.SCHEDULED
    assert timezone.now() < campaign.next_run_at <= timezone.now() + timedelta(days=7)


def test_cancel_skips_what_has_not_gone_in_one_update(user, django_assert_num_queries):
    campaign = CampaignFactory(status=S.SENDING)
    run = CampaignRunFactory(campaign=campaign)
    done = CampaignRunFactory(campaign=campaign, status=CampaignRun.Status.FINISHED)
    planned = DeliveryFactory.create_batch(3, run=run)
    deferred = DeliveryFactory(run=run, status=Delivery.Status.DEFERRED)
    sent = DeliveryFactory(run=done, status=Delivery.Status.SENT)
    sending = DeliveryFactory(run=run, status=Delivery.Status.SENDING)
    held = DeliveryFactory(run=run, status=Delivery.Status.HELD_OUT)
    elsewhere = DeliveryFactory()

    campaign_cancel(campaign=campaign, user=user)

    campaign.refresh_from_db()
    assert campaign.status == S.CANCELLED
    assert campaign.next_run_at is None
    statuses = dict(Delivery.objects.values_list("id", "status"))
    for row in [*planned, deferred]:
        assert statuses[row.pk] == Delivery.Status.SKIPPED
        row.refresh_from_db()
        assert row.reason == "campaign cancelled"
    assert statuses[sent.pk] == Delivery.Status.SENT
    assert statuses[sending.pk] == Delivery.Status.SENDING
    assert statuses[held.pk] == Delivery.Status.HELD_OUT
    assert statuses[elsewhere.pk] == Delivery.Status.PLANNED
    run.refresh_from_db()
    done.refresh_from_db()
    assert run.status == CampaignRun.Status.CANCELLED
    assert done.status == CampaignRun.Status.FINISHED
    change = campaign.changes.get()
    assert (change.action, change.details) == (
        "cancel",
        {"from": S.SENDING, "skipped": 4},
    )
    # Cancelling again changes nothing.
    with django_assert_num_queries(3):  # savepoint, lock, release
        campaign_cancel(campaign=campaign, user=user)
    assert campaign.changes.count() == 1


def test_a_sent_campaign_cannot_be_cancelled(user):
    campaign = CampaignFactory(status=S.SENT)
    with pytest.raises(ValidationError, match="nothing left to cancel"):
        campaign_cancel(campaign=campaign, user=user)


def test_messages_factory_belongs_to_its_campaign():
    message = MessageFactory()
    assert message.campaign.messages.get() == message
