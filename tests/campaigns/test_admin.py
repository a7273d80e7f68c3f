"""The campaign admin as the Marketers role uses it: list, form, buttons, deliveries."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, CampaignChange, CampaignRun, Delivery, Message
from crm.models import Consent
from crm.roles import CLERKS
from personas.services import persona_create
from segments.models import CustomerSegmentState, Segment
from tests.conftest import user_in_group
from tests.crm.factories import CustomerFactory, UserFactory
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db

Status = Delivery.Status
# Session, user, the marketer's two permission lookups, the filtered and the full
# count, the page of campaigns, the three audience prefetches and one aggregate of
# the page's deliveries per status.
CHANGELIST_QUERIES = 11
# Session, user, the campaign with its three audience prefetches, the marketer's
# two permission lookups, the messages (with their segment and persona), the
# delivery counts, the runs, the history and the chosen segments' options.
CHANGE_PAGE_QUERIES = 13
# Session, user, the two permission lookups, the campaign filter's choices, the
# count, the full count and the page (runs with their delivery counts, or changes
# with their campaign and user).
RUN_LIST_QUERIES = 8
CHANGE_LIST_QUERIES = 9
# Session, user, the marketer's two permission lookups, the choices of the
# campaign, run and message filters, the count and the page of deliveries (with
# campaign, run, customer and message).
DELIVERY_LIST_QUERIES = 9


def url(name: str, *args) -> str:
    return reverse(f"admin:campaigns_{name}", args=args)


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


@pytest.fixture
def segment(db):
    return SegmentFactory(name="Repeat buyers", slug="repeat-buyers")


@pytest.fixture
def campaign(segment):
    campaign = Campaign.objects.create(
        name="Spring sale", slug="spring-sale", channels=["email", "sms"]
    )
    campaign.include_segments.add(segment)
    Message.objects.create(
        campaign=campaign,
        name="General",
        channel="email",
        subject="Spring sale, {{ first_name }}",
        body_text="Everything 20% off this week.",
    )
    return campaign


def deliveries_make(campaign: Campaign, statuses: dict[str, int]) -> CampaignRun:
    """A run of `campaign` with `count` deliveries in each status."""
    run = CampaignRun.objects.create(
        campaign=campaign,
        key=f"run-{CampaignRun.objects.count()}",
        due_at=timezone.now(),
    )
    message = campaign.messages.first()
    Delivery.objects.bulk_create(
        Delivery(
            campaign=campaign,
            run=run,
            customer=CustomerFactory(),
            channel="email",
            message=message,
            status=status,
            reason="email: the campaign's first channel",
            planned_at=timezone.now(),
        )
        for status, count in statuses.items()
        for _index in range(count)
    )
    return run


def form_data(segment: Segment, **overrides) -> dict:
    data = {
        "name": "Summer sale",
        "slug": "",
        "description": "",
        "kind": "one_off",
        "include_segments": [segment.pk],
        "include_personas": [],
        "exclude_segments": [],
        "holdout_percent": "10",
        "channels": "email, sms",
        "priority": "0",
        "frequency_cap": "",
        "frequency_window_days": "",
        "send_at_0": "",
        "send_at_1": "",
        "recurrence": "",
        "trigger_segment": "",
        "trigger_delay_minutes": "0",
        "trigger_reentry_days": "30",
        "costs": "{}",
        "attribution_days": "7",
        "messages-TOTAL_FORMS": "1",
        "messages-INITIAL_FORMS": "0",
        "messages-MIN_NUM_FORMS": "0",
        "messages-MAX_NUM_FORMS": "1000",
        "messages-0-name": "General",
        "messages-0-channel": "email",
        "messages-0-segment": "",
        "messages-0-persona": "",
        "messages-0-weight": "1",
        "messages-0-subject": "Summer is here, {{ first_name }}",
        "messages-0-body_text": "Everything 20% off.",
        "messages-0-body_html": "<p>Everything 20% off.</p>",
    }
    data.update(overrides)
    return data


# The list ----------------------------------------------------------------------


def test_campaign_list_shows_counts_per_delivery_status_in_one_query_for_the_page(
    marketer_client, campaign, segment, django_assert_max_num_queries
):
    deliveries_make(campaign, {Status.SENT: 3, Status.HELD_OUT: 2, Status.UNKNOWN: 1})
    deliveries_make(campaign, {Status.SENT: 1, Status.PLANNED: 4})
    # More campaigns on the page cost no more queries.
    for index in range(5):
        other = Campaign.objects.create(name=f"Other {index}", slug=f"other-{index}")
        other.include_segments.add(segment)

    with django_assert_max_num_queries(CHANGELIST_QUERIES):
        response = marketer_client.get(url("campaign_changelist"))

    assert response.status_code == 200
    row = next(
        result
        for result in response.context["cl"].result_list
        if result.pk == campaign.pk
    )
    assert row.delivery_counts["sent"] == 4
    assert row.delivery_counts["held_out"] == 2
    assert row.delivery_counts["unknown"] == 1
    assert row.delivery_counts["planned"] == 4
    assert row.delivery_counts["skipped"] == 0
    content = response.text
    assert "Repeat buyers" in content
    assert f"campaign__id__exact={campaign.pk}&amp;status__exact=unknown" in content


def test_campaign_list_filters_by_status_and_finds_by_name(marketer_client, campaign):
    Campaign.objects.create(name="Old news", slug="old", status=Campaign.Status.SENT)

    drafts = marketer_client.get(url("campaign_changelist") + "?status__exact=draft")
    found = marketer_client.get(url("campaign_changelist") + "?q=old")

    assert [c.name for c in drafts.context["cl"].result_list] == ["Spring sale"]
    assert [c.name for c in found.context["cl"].result_list] == ["Old news"]


# The form ----------------------------------------------------------------------


def test_marketer_creates_a_campaign_with_its_messages(marketer_client, segment):
    response = marketer_client.post(url("campaign_add"), form_data(segment))

    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get(name="Summer sale")
    assert campaign.slug == "summer-sale"
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.channels == ["email", "sms"]
    assert list(campaign.include_segments.all()) == [segment]
    assert campaign.created_by.username == "marketer"
    message = campaign.messages.get()
    assert (message.name, message.channel, message.body_html) == (
        "General",
        "email",
        "<p>Everything 20% off.</p>",
    )


@pytest.mark.parametrize(
    ("overrides", "field", "error"),
    [
        ({"channels": "email, fax"}, "channels", "Unknown channel fax"),
        ({"include_segments": []}, "include_segments", "at least one segment"),
    ],
)
def test_campaign_form_refuses_what_cannot_be_sent(
    marketer_client, segment, overrides, field, error
):
    response = marketer_client.post(
        url("campaign_add"), form_data(segment, **overrides)
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert error in " ".join(errors[field])
    assert not Campaign.objects.filter(name="Summer sale").exists()


def test_editing_a_draft_replaces_its_messages_as_the_page_shows_them(
    marketer_client, campaign, segment
):
    general = campaign.messages.get()
    data = form_data(
        segment,
        name="Spring sale",
        **{
            "messages-TOTAL_FORMS": "2",
            "messages-INITIAL_FORMS": "1",
            "messages-0-id": str(general.pk),
            "messages-0-campaign": str(campaign.pk),
            "messages-0-name": "General",
            "messages-0-DELETE": "on",
            "messages-1-name": "Push",
            "messages-1-channel": "push",
            "messages-1-segment": "",
            "messages-1-persona": "",
            "messages-1-weight": "2",
            "messages-1-subject": "",
            "messages-1-body_text": "20% off, {{ first_name }}",
            "messages-1-body_html": "",
        },
    )
    data.pop("slug")

    response = marketer_client.post(url("campaign_change", campaign.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(campaign.messages.values_list("name", "channel", "weight")) == [
        ("Push", "push", 2)
    ]
    # A draft's edits are not history: the log starts at scheduling.
    assert not campaign.changes.exists()


def test_a_refusal_of_the_service_is_shown_beside_its_field(marketer_client, segment):
    response = marketer_client.post(
        url("campaign_add"),
        form_data(segment, kind="recurring", recurrence="every other Tuesday"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "recurrence" in errors
    assert not Campaign.objects.filter(name="Summer sale").exists()
    assert not Message.objects.exists()


def test_a_refused_template_is_the_only_error_on_its_field(marketer_client, segment):
    response = marketer_client.post(
        url("campaign_add"),
        form_data(segment, **{"messages-0-subject": "Hi {{ last_name }}"}),
    )

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.forms[0].errors
    # The template's own refusal, not also "needs a subject" (it has one).
    assert len(errors["subject"]) == 1, errors
    assert "{{ last_name }} is not a field you can use" in errors["subject"][0]


def test_a_message_is_for_a_segment_or_a_persona_not_both(marketer_client, segment):
    persona = persona_create(name="Sarah", query='city = "delft"')

    response = marketer_client.post(
        url("campaign_add"),
        form_data(
            segment,
            **{
                "messages-0-segment": str(segment.pk),
                "messages-0-persona": str(persona.pk),
            },
        ),
    )

    assert response.status_code == 200
    inline = response.context["inline_admin_formsets"][0].formset
    assert "one segment or one persona" in str(inline.errors)


def test_channels_keep_their_order_on_the_change_page(marketer_client, campaign):
    response = marketer_client.get(url("campaign_change", campaign.pk))

    assert 'value="email, sms"' in response.text


def test_a_scheduled_campaigns_channels_read_in_order_in_words(
    marketer_client, campaign
):
    campaign.status = Campaign.Status.SCHEDULED
    campaign.save(update_fields=["status"])

    response = marketer_client.get(url("campaign_change", campaign.pk))

    assert response.status_code == 200
    assert "Email, then SMS" in response.text
    assert "[&quot;email&quot;, &quot;sms&quot;]" not in response.text


def test_change_page_shows_counts_runs_and_history(
    marketer_client, campaign, django_assert_max_num_queries
):
    deliveries_make(campaign, {Status.SENT: 2, Status.SKIPPED: 1})
    CampaignChange.objects.create(
        campaign=campaign, action="schedule", details={"send_at": "tomorrow"}
    )

    with django_assert_max_num_queries(CHANGE_PAGE_QUERIES):
        response = marketer_client.get(url("campaign_change", campaign.pk))

    assert response.status_code == 200
    content = response.text
    assert 'id="campaign-count-sent">2<' in content
    assert 'id="campaign-count-skipped">1<' in content
    assert "send_at: tomorrow" in content
    assert "run-0" in content


def test_a_drafts_history_says_why_it_is_empty(marketer_client, campaign):
    response = marketer_client.get(url("campaign_change", campaign.pk))

    assert campaign.status == Campaign.Status.DRAFT
    assert "A draft keeps no history" in response.text
    assert "No changes since the campaign was scheduled" not in response.text


def test_a_sent_campaign_keeps_its_audience_and_messages(
    marketer_client, campaign, segment
):
    campaign.status = Campaign.Status.SENT
    campaign.save(update_fields=["status"])
    other = SegmentFactory(name="Lapsed", slug="lapsed")

    page = marketer_client.get(url("campaign_change", campaign.pk))
    response = marketer_client.post(
        url("campaign_change", campaign.pk),
        {
            "name": "Spring sale (renamed)",
            "description": "",
            "include_segments": [other.pk],
            "channels": "post",
            "priority": "0",
            "frequency_cap": "",
            "frequency_window_days": "",
            "send_at_0": "",
            "send_at_1": "",
            "recurrence": "",
            "trigger_delay_minutes": "0",
            "trigger_reentry_days": "30",
            "costs": "{}",
            "attribution_days": "7",
            # The page still carries the messages' management form.
            "messages-TOTAL_FORMS": "1",
            "messages-INITIAL_FORMS": "1",
            "messages-MIN_NUM_FORMS": "0",
            "messages-MAX_NUM_FORMS": "1000",
            "messages-0-id": str(campaign.messages.get().pk),
            "messages-0-campaign": str(campaign.pk),
            "messages-0-body_text": "Changed after sending",
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert 'id="campaign-locked"' in page.text
    assert "id_include_segments" not in page.text
    assert "messages-0-body_text" not in page.text
    campaign.refresh_from_db()
    assert campaign.name == "Spring sale (renamed)"
    assert list(campaign.include_segments.all()) == [segment]
    assert campaign.channels == ["email", "sms"]
    assert campaign.messages.get().body_text == "Everything 20% off this week."


def test_only_a_draft_may_be_deleted(marketer_client, campaign):
    scheduled = Campaign.objects.create(
        name="Scheduled", slug="scheduled", status=Campaign.Status.SCHEDULED
    )

    assert marketer_client.get(url("campaign_delete", campaign.pk)).status_code == 200
    assert marketer_client.get(url("campaign_delete", scheduled.pk)).status_code == 403


# Deliveries, runs and the change log ------------------------------------------


def test_deliveries_list_filters_by_campaign_and_status_and_links_the_customer(
    marketer_client, campaign, django_assert_max_num_queries
):
    run = deliveries_make(campaign, {Status.SENT: 3, Status.SKIPPED: 2})
    deliveries_make(campaign, {Status.SKIPPED: 1})
    other = Campaign.objects.create(name="Other", slug="other")
    deliveries_make(other, {Status.SKIPPED: 4})
    skipped = Delivery.objects.filter(run=run, status=Status.SKIPPED).first()

    with django_assert_max_num_queries(DELIVERY_LIST_QUERIES):
        response = marketer_client.get(
            url("delivery_changelist")
            + f"?campaign__id__exact={campaign.pk}&status__exact=skipped"
            + f"&run={run.pk}"
        )

    assert response.status_code == 200
    assert {d.status for d in response.context["cl"].result_list} == {"skipped"}
    assert len(response.context["cl"].result_list) == 2
    assert response.context["cl"].result_count == 2
    assert reverse("admin:crm_customer_change", args=[skipped.customer_id]) in (
        response.text
    )
    assert "the campaign&#x27;s first channel" in response.text


def test_deliveries_are_found_by_the_customers_email_or_number(
    marketer_client, campaign
):
    deliveries_make(campaign, {Status.SENT: 3})
    delivery = Delivery.objects.select_related("customer").first()

    by_email = marketer_client.get(
        url("delivery_changelist") + f"?q={delivery.customer.email.upper()}"
    )
    by_number = marketer_client.get(
        url("delivery_changelist") + f"?q={delivery.customer_id}"
    )

    assert [d.pk for d in by_email.context["cl"].result_list] == [delivery.pk]
    assert [d.pk for d in by_number.context["cl"].result_list] == [delivery.pk]


def test_deliveries_runs_and_changes_are_read_only(marketer_client, campaign):
    run = deliveries_make(campaign, {Status.SENT: 1})
    delivery = Delivery.objects.get()

    assert marketer_client.get(url("delivery_add")).status_code == 403
    assert marketer_client.get(url("campaignrun_add")).status_code == 403
    assert marketer_client.get(url("campaignchange_add")).status_code == 403
    assert marketer_client.get(url("delivery_change", delivery.pk)).status_code == 200
    assert marketer_client.get(url("campaignrun_change", run.pk)).status_code == 200
    response = marketer_client.post(
        url("delivery_change", delivery.pk), {"status": "planned"}
    )
    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == Status.SENT


def test_run_list_counts_each_runs_deliveries(
    marketer_client, campaign, django_assert_max_num_queries
):
    run = deliveries_make(campaign, {Status.SENT: 2, Status.HELD_OUT: 1})
    deliveries_make(campaign, {Status.SENT: 1})

    with django_assert_max_num_queries(RUN_LIST_QUERIES):
        response = marketer_client.get(url("campaignrun_changelist"))

    assert response.status_code == 200
    assert f'?run={run.pk}">3<' in response.text


def test_change_log_lists_who_did_what(
    marketer_client, campaign, django_assert_max_num_queries
):
    marketer_client.post(url("campaign_schedule", campaign.pk))
    marketer_client.post(url("campaign_pause", campaign.pk))

    with django_assert_max_num_queries(CHANGE_LIST_QUERIES):
        response = marketer_client.get(url("campaignchange_changelist"))

    assert response.status_code == 200
    assert [c.action for c in response.context["cl"].result_list] == [
        "pause",
        "schedule",
    ]
    assert "marketer" in response.text
    assert "from: scheduled" in response.text


# Who may ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["campaign_changelist", "campaign_add", "delivery_changelist"]
)
def test_marketer_opens_the_campaign_pages(marketer_client, campaign, name):
    assert marketer_client.get(url(name)).status_code == 200


def test_marketer_opens_a_campaign(marketer_client, campaign):
    assert marketer_client.get(url("campaign_change", campaign.pk)).status_code == 200


@pytest.mark.parametrize(
    "name", ["campaign_changelist", "campaign_add", "delivery_changelist"]
)
def test_clerk_may_not_open_the_campaign_pages(client, campaign, name):
    client.force_login(user_in_group("clerk-staff", CLERKS, is_staff=True))

    assert client.get(url(name)).status_code == 403
    assert client.get(url("campaign_change", campaign.pk)).status_code == 403


# Segments and personas carry a channel preference ------------------------------


def test_segment_admin_edits_the_channel_preference_in_order(marketer_client, segment):
    response = marketer_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]),
        {
            "name": segment.name,
            "kind": segment.kind,
            "description": "",
            "is_active": "on",
            "query": "orders >= 1",
            "rules": "",
            "channel_preference": "push, email, push",
        },
    )

    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.channel_preference == ["push", "email"]
    page = marketer_client.get(
        reverse("admin:segments_segment_change", args=[segment.pk])
    )
    assert 'value="push, email"' in page.text


def test_segment_admin_refuses_an_unknown_channel(marketer_client, segment):
    response = marketer_client.post(
        reverse("admin:segments_segment_change", args=[segment.pk]),
        {
            "name": segment.name,
            "kind": segment.kind,
            "is_active": "on",
            "query": "orders >= 1",
            "rules": "",
            "channel_preference": "email, telegram",
        },
    )

    assert response.status_code == 200
    assert "Unknown channel telegram" in response.text
    segment.refresh_from_db()
    assert segment.channel_preference == []


# The buttons ---------------------------------------------------------------------


def test_schedule_button_schedules_and_records_who(marketer_client, campaign):
    page = marketer_client.get(url("campaign_change", campaign.pk))

    response = marketer_client.post(url("campaign_schedule", campaign.pk))

    assert 'id="campaign-schedule-button"' in page.text
    assert response.status_code == 302
    assert response["Location"] == url("campaign_change", campaign.pk)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SCHEDULED
    change = campaign.changes.get()
    assert (change.action, change.changed_by.username) == ("schedule", "marketer")
    assert "is scheduled" in messages_of(response)[0]


def test_a_refused_schedule_shows_the_services_reason(marketer_client, campaign):
    campaign.messages.all().delete()

    response = marketer_client.post(url("campaign_schedule", campaign.pk), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT
    assert any("at least one message" in m for m in messages_of(response))
    assert "at least one message" in response.text


def test_pause_resume_and_cancel_follow_the_status(marketer_client, campaign):
    marketer_client.post(url("campaign_schedule", campaign.pk))

    scheduled = marketer_client.get(url("campaign_change", campaign.pk))
    marketer_client.post(url("campaign_pause", campaign.pk))
    campaign.refresh_from_db()
    paused_status = campaign.status
    paused = marketer_client.get(url("campaign_change", campaign.pk))
    marketer_client.post(url("campaign_resume", campaign.pk))
    campaign.refresh_from_db()
    resumed_status = campaign.status
    marketer_client.post(url("campaign_cancel", campaign.pk))
    campaign.refresh_from_db()

    assert 'id="campaign-pause-button"' in scheduled.text
    assert 'id="campaign-schedule-button"' not in scheduled.text
    assert 'id="campaign-resume-button"' in paused.text
    assert 'id="campaign-pause-button"' not in paused.text
    assert paused_status == Campaign.Status.PAUSED
    assert resumed_status == Campaign.Status.SCHEDULED
    assert campaign.status == Campaign.Status.CANCELLED
    assert list(campaign.changes.order_by("id").values_list("action", flat=True)) == [
        "schedule",
        "pause",
        "resume",
        "cancel",
    ]


def test_buttons_take_only_a_post(marketer_client, campaign):
    response = marketer_client.get(url("campaign_schedule", campaign.pk))

    assert response.status_code == 405
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_user_who_may_only_look_cannot_schedule(client, campaign):
    from django.contrib.auth.models import Permission

    viewer = UserFactory(username="viewer", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_campaign"))
    client.force_login(viewer)

    page = client.get(url("campaign_change", campaign.pk))
    response = client.post(url("campaign_schedule", campaign.pk))

    assert page.status_code == 200
    assert 'id="campaign-schedule-button"' not in page.text
    assert response.status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_a_scheduled_campaign_changes_only_its_safe_fields_and_logs_them(
    marketer_client, campaign
):
    marketer_client.post(url("campaign_schedule", campaign.pk))
    page = marketer_client.get(url("campaign_change", campaign.pk))
    form = page.context["adminform"].form

    response = marketer_client.post(
        url("campaign_change", campaign.pk),
        {
            **{
                name: "" if form.initial.get(name) is None else form.initial[name]
                for name in form.fields
                if name not in ("costs",)
            },
            "name": "Spring sale, final",
            "costs": '{"email": "0.01"}',
            "messages-TOTAL_FORMS": "1",
            "messages-INITIAL_FORMS": "1",
            "messages-MIN_NUM_FORMS": "0",
            "messages-MAX_NUM_FORMS": "1000",
            "messages-0-id": str(campaign.messages.get().pk),
            "messages-0-campaign": str(campaign.pk),
        },
    )

    assert set(form.fields) <= {
        "name",
        "description",
        "priority",
        "frequency_cap",
        "frequency_window_days",
        "costs",
        "attribution_days",
    }
    assert response.status_code == 302, (
        response.context["adminform"].form.errors,
        [f.errors for f in response.context["inline_admin_formsets"][0].formset.forms],
    )
    campaign.refresh_from_db()
    assert campaign.name == "Spring sale, final"
    update = campaign.changes.get(action="update")
    assert update.details["name"] == {"old": "Spring sale", "new": "Spring sale, final"}
    assert update.changed_by.username == "marketer"
    history = marketer_client.get(url("campaign_change", campaign.pk))
    assert "name: Spring sale → Spring sale, final" in history.text


def test_preview_button_shows_size_channels_and_why_customers_are_skipped(
    marketer_client, campaign, segment
):
    campaign.holdout_percent = 0
    campaign.channels = ["email"]
    campaign.save(update_fields=["holdout_percent", "channels"])
    reachable = [CustomerFactory(), CustomerFactory()]
    unreachable = CustomerFactory(email="")
    for customer in [*reachable, unreachable]:
        CustomerSegmentState.objects.update_or_create(
            customer=customer, defaults={"segment_ids": [segment.pk]}
        )
    for customer in reachable:
        Consent.objects.create(
            customer=customer,
            channel="email",
            status=Consent.Status.GRANTED,
            source=Consent.Source.STORE,
            wording="yes",
        )
    page = marketer_client.get(url("campaign_change", campaign.pk))

    response = marketer_client.post(url("campaign_preview", campaign.pk))

    assert 'id="campaign-preview-button"' in page.text
    assert response.status_code == 200
    preview = response.context["preview"]
    assert (preview.audience, preview.skipped) == (3, 1)
    assert preview.planned + preview.deferred == 2
    assert [(row["channel"], row["count"]) for row in response.context["channels"]] == [
        ("email", 2)
    ]
    reasons = response.context["reasons"]
    assert [count for _reason, count in reasons] == [1]
    assert reasons[0][0] in response.text
    assert 'id="preview-audience">3<' in response.text
    # Previewing writes nothing.
    assert not Delivery.objects.exists()
    assert not CampaignRun.objects.exists()
    assert marketer_client.get(url("campaign_preview", campaign.pk)).status_code == 405


def test_resend_unknown_plans_the_lost_deliveries_again(marketer_client, campaign):
    marketer_client.post(url("campaign_schedule", campaign.pk))
    deliveries_make(campaign, {Status.UNKNOWN: 2, Status.SENT: 1})

    page = marketer_client.get(url("campaign_change", campaign.pk))
    response = marketer_client.post(url("campaign_resend_unknown", campaign.pk))

    assert 'id="campaign-resend_unknown-button"' in page.text
    assert response.status_code == 302
    assert "2 deliveries" in messages_of(response)[0]
    assert Delivery.objects.filter(status=Status.PLANNED).count() == 2
    assert Delivery.objects.filter(status=Status.SENT).count() == 1
    change = campaign.changes.get(action="resend_unknown")
    assert change.changed_by.username == "marketer"


def test_resend_unknown_is_offered_only_when_there_are_unknown(
    marketer_client, campaign
):
    marketer_client.post(url("campaign_schedule", campaign.pk))
    deliveries_make(campaign, {Status.SENT: 1})

    page = marketer_client.get(url("campaign_change", campaign.pk))

    assert 'id="campaign-resend_unknown-button"' not in page.text


# The message preview -------------------------------------------------------------


def test_message_preview_renders_for_a_chosen_customer(marketer_client, campaign):
    customer = CustomerFactory(first_name="Femke")
    message = campaign.messages.get()
    message.body_html = "<p>Hi {{ first_name }}</p><script>alert(1)</script>"
    message.save(update_fields=["body_html"])

    response = marketer_client.get(
        url("campaign_message_preview", campaign.pk, message.pk)
        + f"?customer={customer.pk}"
    )

    assert response.status_code == 200
    assert response.context["rendered"].subject == "Spring sale, Femke"
    content = response.text
    # The HTML is an escaped srcdoc of an iframe that may run nothing.
    assert 'sandbox=""' in content
    assert 'srcdoc="&lt;p&gt;Hi Femke&lt;/p&gt;&lt;script&gt;' in content
    assert "<script>alert(1)" not in content


def test_message_preview_without_a_customer_uses_the_sample(marketer_client, campaign):
    message = campaign.messages.get()

    response = marketer_client.get(
        url("campaign_message_preview", campaign.pk, message.pk)
    )

    assert response.status_code == 200
    assert response.context["customer"] is None
    assert response.context["rendered"].subject == "Spring sale, Sarah"


def test_change_page_links_each_message_to_its_preview(marketer_client, campaign):
    message = campaign.messages.get()

    response = marketer_client.get(url("campaign_change", campaign.pk))

    assert url("campaign_message_preview", campaign.pk, message.pk) in response.text


def test_a_message_template_with_an_unknown_field_is_refused(marketer_client, segment):
    response = marketer_client.post(
        url("campaign_add"),
        form_data(segment, **{"messages-0-body_text": "Hi {{ customer.password }}"}),
    )

    assert response.status_code == 200
    inline = response.context["inline_admin_formsets"][0].formset
    assert "body_text" in inline.errors[0]
    assert not Campaign.objects.filter(name="Summer sale").exists()
