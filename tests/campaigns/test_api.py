"""The campaigns API contract: drafts, the lifecycle, deliveries, roles."""

import pytest
from django.core.exceptions import ValidationError
from drf_spectacular.generators import SchemaGenerator

from campaigns.models import Campaign, CampaignRun, Delivery
from crm.models import Consent
from segments.services import segment_create
from tests.api.conftest import errors_of
from tests.campaigns.factories import (
    CampaignFactory,
    CampaignRunFactory,
    DeliveryFactory,
    MessageFactory,
    PersonaFactory,
)
from tests.crm.factories import CustomerFactory
from tests.segments.factories import SegmentFactory, membership_create

URL = "/api/v1/campaigns/"
S = Campaign.Status


@pytest.fixture
def audience(db):
    return {
        "vips": SegmentFactory(slug="vips"),
        "lapsed": SegmentFactory(slug="lapsed"),
        "sarah": PersonaFactory(slug="sarah", preferred_channels=["push", "social"]),
    }


def body(**fields):
    return {
        "name": "Spring sale",
        "slug": "spring-sale",
        "kind": "one_off",
        "audience": {
            "include_segments": ["vips"],
            "include_personas": ["sarah"],
            "exclude_segments": ["lapsed"],
        },
        "channels": ["email", "sms"],
        "holdout_percent": 15,
        "send_at": "2027-03-01T09:00:00Z",
        "messages": [
            {
                "name": "general",
                "channel": "email",
                "subject": "Spring, {{ first_name }}",
                "body_text": "Hello {{ first_name }}",
                "body_html": "<p>Hello {{ first_name }}</p>",
            },
            {
                "name": "sarah-push",
                "channel": "push",
                "body_text": "Sale starts now",
                "persona": "sarah",
                "weight": 2,
            },
        ],
        **fields,
    }


# Contract ---------------------------------------------------------------------------


def test_marketer_creates_a_campaign_and_reads_it_back(marketer, audience):
    response = marketer.post(URL, body(), format="json")

    assert response.status_code == 201, response.json()
    data = response.json()
    assert data["slug"] == "spring-sale"
    assert data["status"] == "draft"
    assert data["audience"] == {
        "include_segments": ["vips"],
        "include_personas": ["sarah"],
        "exclude_segments": ["lapsed"],
    }
    assert data["channels"] == ["email", "sms"]
    assert data["holdout_percent"] == 15
    assert data["send_at"] == "2027-03-01T09:00:00Z"
    assert data["trigger"] == {"segment": None, "delay_minutes": 0, "reentry_days": 30}
    assert [
        (m["name"], m["channel"], m["persona"], m["segment"], m["weight"])
        for m in data["messages"]
    ] == [("general", "email", None, None, 1), ("sarah-push", "push", "sarah", None, 2)]
    assert data["counts"] == dict.fromkeys(Delivery.Status.values, 0)
    assert data["created_by"] == "marketer"
    assert marketer.get(f"{URL}spring-sale/").json() == data


def test_a_triggered_campaign_names_its_segment_by_slug(marketer, audience):
    response = marketer.post(
        URL,
        body(
            kind="triggered",
            send_at=None,
            trigger={"segment": "vips", "delay_minutes": 30, "reentry_days": 14},
        ),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["trigger"] == {
        "segment": "vips",
        "delay_minutes": 30,
        "reentry_days": 14,
    }


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"channels": ["fax"]}, ("channels[0]", "invalid_choice")),
        (
            {"audience": {"include_segments": ["nope"]}},
            ("audience.include_segments", "does_not_exist"),
        ),
        (
            {"messages": [{"name": "x", "channel": "email", "body_text": "{% if %}"}]},
            ("messages[0].body_text", "template_syntax"),
        ),
        ({"recurrence": "RRULE:FREQ=SOMETIMES"}, ("recurrence", "recurrence_invalid")),
        ({"holdout_percent": 91}, ("holdout_percent", "max_value")),
    ],
)
def test_invalid_input_is_a_400_naming_the_field(marketer, audience, fields, error):
    response = marketer.post(URL, body(**fields), format="json")
    assert response.status_code == 400
    assert error in errors_of(response)
    assert not Campaign.objects.exists()


def test_patch_changes_a_draft_and_delete_removes_it(marketer, audience):
    marketer.post(URL, body(), format="json")
    response = marketer.patch(
        f"{URL}spring-sale/",
        {"holdout_percent": 20, "messages": [body()["messages"][0]]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["holdout_percent"] == 20
    assert [m["name"] for m in response.json()["messages"]] == ["general"]
    # The slug is the campaign's identity: a PATCH naming another is ignored.
    renamed = marketer.patch(f"{URL}spring-sale/", {"slug": "other"}, format="json")
    assert renamed.status_code == 200
    assert renamed.json()["slug"] == "spring-sale"
    assert marketer.put(f"{URL}spring-sale/", body(), format="json").status_code == 405
    assert marketer.delete(f"{URL}spring-sale/").status_code == 204
    assert not Campaign.objects.exists()


def test_schedule_is_202_then_lifecycle_and_patch_after_scheduling(marketer, audience):
    marketer.post(URL, body(), format="json")
    detail = f"{URL}spring-sale/"

    response = marketer.post(f"{detail}schedule/")
    assert response.status_code == 202
    assert response.json()["status"] == "scheduled"
    assert response.json()["next_run_at"] == "2027-03-01T09:00:00Z"

    # A second click schedules nothing twice.
    again = marketer.post(f"{detail}schedule/")
    assert again.status_code == 202
    campaign = Campaign.objects.get()
    assert campaign.changes.filter(action="schedule").count() == 1

    refused = marketer.patch(detail, {"channels": ["sms"]}, format="json")
    assert refused.status_code == 400
    assert errors_of(refused) == [("channels", "campaign_not_draft")]
    assert marketer.patch(detail, {"name": "Spring!"}, format="json").status_code == 200
    assert marketer.delete(detail).status_code == 400

    assert marketer.post(f"{detail}pause/").json()["status"] == "paused"
    assert marketer.post(f"{detail}resume/").json()["status"] == "scheduled"
    assert marketer.post(f"{detail}cancel/").json()["status"] == "cancelled"
    assert list(
        campaign.changes.order_by("id").values_list("action", "changed_by__username")
    ) == [
        ("schedule", "marketer"),
        ("update", "marketer"),
        ("pause", "marketer"),
        ("resume", "marketer"),
        ("cancel", "marketer"),
    ]


def test_scheduling_an_incomplete_draft_says_what_is_missing(marketer, audience):
    marketer.post(URL, body(audience={}, messages=[]), format="json")
    response = marketer.post(f"{URL}spring-sale/schedule/")
    assert response.status_code == 400
    assert set(errors_of(response)) == {
        ("audience", "audience_empty"),
        ("messages", "messages_empty"),
    }


# Counts and deliveries --------------------------------------------------------------


def test_counts_per_status_on_detail_and_list(reader, django_assert_max_num_queries):
    campaign = CampaignFactory(slug="c", status=S.SENDING)
    run = CampaignRunFactory(campaign=campaign)
    DeliveryFactory.create_batch(2, run=run, status=Delivery.Status.SENT)
    DeliveryFactory(run=run, status=Delivery.Status.HELD_OUT)
    for n in range(4):
        other = CampaignFactory(slug=f"other-{n}")
        MessageFactory(campaign=other, segment=SegmentFactory())
        other.include_segments.add(SegmentFactory())
        DeliveryFactory(run=CampaignRunFactory(campaign=other))

    with django_assert_max_num_queries(8):
        counts = reader.get(f"{URL}c/").json()["counts"]
    assert counts == {
        **dict.fromkeys(Delivery.Status.values, 0),
        "sent": 2,
        "held_out": 1,
    }
    # Token and user, groups; the page; four prefetches (messages with their
    # targets); one aggregate of the counts: however many campaigns.
    with django_assert_max_num_queries(8):
        response = reader.get(URL)
    results = response.json()["results"]
    assert len(results) == 5
    assert {r["slug"]: r["counts"]["planned"] for r in results} == {
        "c": 0,
        **{f"other-{n}": 1 for n in range(4)},
    }


def test_deliveries_filter_and_page(reader, django_assert_max_num_queries):
    campaign = CampaignFactory(slug="c")
    hello = MessageFactory(campaign=campaign, name="hello")
    text = MessageFactory(campaign=campaign, name="text", channel="sms")
    run = CampaignRunFactory(campaign=campaign)
    joe = CustomerFactory()
    mine = DeliveryFactory(
        run=run,
        customer=joe,
        message=hello,
        status=Delivery.Status.SENT,
        reason="email: campaign default order",
    )
    DeliveryFactory.create_batch(4, run=run, message=text, channel="sms")
    DeliveryFactory(run=run, status=Delivery.Status.SKIPPED, channel="")
    DeliveryFactory(run=CampaignRunFactory(), customer=joe)
    url = f"{URL}c/deliveries/"

    row = reader.get(url, {"customer": joe.pk}).json()["results"]
    assert row == [
        {
            "id": mine.pk,
            "customer": joe.pk,
            "channel": "email",
            "message": "hello",
            "status": "sent",
            "reason": "email: campaign default order",
            "planned_at": mine.planned_at.isoformat().replace("+00:00", "Z"),
            "sent_at": None,
        }
    ]
    assert len(reader.get(url, {"message": "text"}).json()["results"]) == 4
    assert len(reader.get(url, {"channel": "sms"}).json()["results"]) == 4
    assert len(reader.get(url, {"status": "skipped"}).json()["results"]) == 1
    assert reader.get(url, {"status": "lost"}).status_code == 400

    seen, page_url = [], url + "?page_size=2"
    while page_url:
        with django_assert_max_num_queries(5):
            page = reader.get(page_url).json()
        seen += [r["id"] for r in page["results"]]
        page_url = page["next"]
    assert len(seen) == len(set(seen)) == 6


# Preview ----------------------------------------------------------------------------


def test_preview_gives_the_audience_figures_without_writing(reader, till):
    regulars = SegmentFactory(slug="regulars")
    campaign = CampaignFactory(slug="c", holdout_percent=0, channels=["email"])
    campaign.include_segments.add(regulars)
    MessageFactory(campaign=campaign)
    for n in range(3):
        customer = membership_create(segment=regulars).customer
        if n < 2:
            Consent.objects.create(
                customer=customer,
                channel="email",
                status=Consent.Status.GRANTED,
                source=Consent.Source.STORE,
                wording="yes",
            )

    response = reader.post(f"{URL}c/preview/")

    assert response.status_code == 200, response.json()
    figures = response.json()
    assert figures["audience"] == 3
    assert figures["held_out"] == 0
    assert figures["planned"] + figures["deferred"] == 2
    assert figures["by_channel"] == {"email": 2}
    assert figures["skipped"] == 1
    assert sum(figures["skipped_reasons"].values()) == 1
    assert not Delivery.objects.exists()
    assert not CampaignRun.objects.exists()
    assert till.post(f"{URL}c/preview/").status_code == 403


# Roles ------------------------------------------------------------------------------


def test_tills_get_403_and_readers_cannot_write(till, reader, nobody, audience):
    CampaignFactory(slug="c")
    for client in (till, nobody):
        assert client.get(URL).status_code == 403
        assert client.get(f"{URL}c/").status_code == 403
        assert client.get(f"{URL}c/deliveries/").status_code == 403
        assert client.post(URL, body(), format="json").status_code == 403
    assert reader.get(URL).status_code == 200
    assert reader.get(f"{URL}c/").status_code == 200
    assert reader.post(URL, body(), format="json").status_code == 403
    assert reader.patch(f"{URL}c/", {"name": "x"}, format="json").status_code == 403
    assert reader.delete(f"{URL}c/").status_code == 403
    for step in ("schedule", "pause", "resume", "cancel"):
        assert reader.post(f"{URL}c/{step}/").status_code == 403
    assert Campaign.objects.get().status == S.DRAFT


def test_admin_tokens_may_write(api_admin, audience):
    assert api_admin.post(URL, body(), format="json").status_code == 201
    assert api_admin.post(f"{URL}spring-sale/schedule/").status_code == 202


# Channel preference on segments and personas ----------------------------------------


def test_segments_accept_and_return_a_channel_preference(marketer):
    created = marketer.post(
        "/api/v1/segments/",
        {
            "name": "Texters",
            "query": "orders >= 1",
            "channel_preference": ["sms", "email", "sms"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    assert created.json()["channel_preference"] == ["sms", "email"]
    changed = marketer.patch(
        "/api/v1/segments/texters/", {"channel_preference": ["push"]}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["channel_preference"] == ["push"]
    refused = marketer.patch(
        "/api/v1/segments/texters/", {"channel_preference": ["fax"]}, format="json"
    )
    assert refused.status_code == 400
    assert errors_of(refused) == [("channel_preference[0]", "invalid_choice")]


def test_segment_service_refuses_an_unknown_channel(db):
    with pytest.raises(ValidationError, match="List channels"):
        segment_create(name="x", query="orders >= 1", channel_preference=["fax"])


def test_personas_take_channel_preference_as_preferred_channels(marketer):
    created = marketer.post(
        "/api/v1/personas/",
        {
            "name": "Sarah",
            "query": "orders >= 1",
            "channel_preference": ["push", "social"],
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    data = created.json()
    assert (
        data["channel_preference"] == data["preferred_channels"] == ["push", "social"]
    )
    changed = marketer.patch(
        "/api/v1/personas/sarah/", {"channel_preference": ["email"]}, format="json"
    )
    assert changed.json()["preferred_channels"] == ["email"]
    conflict = marketer.patch(
        "/api/v1/personas/sarah/",
        {"channel_preference": ["email"], "preferred_channels": ["sms"]},
        format="json",
    )
    assert conflict.status_code == 400
    assert errors_of(conflict) == [("channel_preference", "alias_conflict")]


def test_the_schema_says_what_may_be_null(db):
    schema = SchemaGenerator().get_schema(request=None, public=True)
    campaign = schema["components"]["schemas"]["Campaign"]["properties"]
    delivery = schema["components"]["schemas"]["Delivery"]["properties"]
    assert campaign["created_by"].get("nullable") is True
    assert delivery["message"].get("nullable") is True
    assert "/api/v1/campaigns/{slug}/preview/" in schema["paths"]
    assert "put" not in schema["paths"]["/api/v1/campaigns/{slug}/"]
