"""Planning a run: channel, message, control group, cap and quiet hours per customer,
checked against a plain-Python oracle on random customers."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.models import Campaign, CampaignRun, Delivery, Message
from campaigns.quiet_hours import quiet_hours_end
from campaigns.services.planning import (
    PREFERENCE_CHANNELS,
    audience_preview,
    run_plan,
)
from crm.models import Channel, Consent, Customer, PushToken, Store
from personas.models import Persona, PersonaAssignment
from segments.models import CustomerSegmentState, Segment

CHANNELS = [c.value for c in Channel]
# Noon in Amsterdam on a winter day: outside the default quiet hours there.
NOON = datetime(2027, 1, 12, 11, 0, tzinfo=UTC)


def consent(customer, channel, status=Consent.Status.GRANTED, at=None):
    Consent.objects.create(
        customer=customer,
        channel=channel,
        status=status,
        source=Consent.Source.STORE,
        wording="yes",
        recorded_at=at or NOON - timedelta(days=30),
    )


def member_of(customer, *segments, persona=None):
    CustomerSegmentState.objects.update_or_create(
        customer=customer, defaults={"segment_ids": sorted(s.pk for s in segments)}
    )
    if persona is not None:
        PersonaAssignment.objects.create(
            customer=customer, persona=persona, assigned_at=NOON
        )


def campaign_with(
    segment, *, channels=("email", "sms"), holdout=0, slug="winter-sale", **fields
):
    campaign = Campaign.objects.create(
        name="Winter sale",
        slug=slug,
        channels=list(channels),
        holdout_percent=holdout,
        **fields,
    )
    campaign.include_segments.add(segment)
    for channel in CHANNELS:
        Message.objects.create(
            campaign=campaign,
            name=f"general {channel}",
            channel=channel,
            body_text="Hi",
        )
    return campaign


def plan(campaign, due=NOON, key="1"):
    run = CampaignRun.objects.create(campaign=campaign, key=key, due_at=due)
    run_plan(run=run)
    return run


@pytest.fixture
def segment(db):
    return Segment.objects.create(name="Regulars", slug="regulars", rules={})


def test_persona_preference_picks_the_first_channel_that_reaches_and_says_why(
    segment,
):
    sarah = Persona.objects.create(
        name="Sarah",
        slug="sarah",
        status=Persona.Status.ACTIVE,
        preferred_channels=["push", "sms", "email"],
    )
    ann = Customer.objects.create(email="ann@example.com", phone="+31612345678")
    consent(ann, "sms")
    consent(ann, "email")
    member_of(ann, segment, persona=sarah)
    campaign = campaign_with(segment)

    plan(campaign)

    delivery = Delivery.objects.get(customer=ann)
    assert delivery.status == Delivery.Status.PLANNED
    assert delivery.channel == "sms"
    assert delivery.reason == (
        "sms: persona Sarah prefers push, then sms, then email; push: no consent"
    )
    assert delivery.message.name == "general sms"


def test_customers_own_preference_comes_first(segment):
    bob = Customer.objects.create(
        email="bob@example.com", phone="+31612345679", preferred_channel="sms"
    )
    consent(bob, "sms")
    consent(bob, "email")
    member_of(bob, segment)
    plan(campaign_with(segment))

    delivery = Delivery.objects.get(customer=bob)
    assert (delivery.channel, delivery.reason) == (
        "sms",
        "sms: the customer's own preference",
    )


def test_a_customer_nothing_reaches_is_skipped_with_what_is_missing(segment):
    cas = Customer.objects.create(email="cas@example.com")
    consent(cas, "email", Consent.Status.WITHDRAWN)
    member_of(cas, segment)
    plan(campaign_with(segment))

    delivery = Delivery.objects.get(customer=cas)
    assert delivery.status == Delivery.Status.SKIPPED
    assert delivery.channel == ""
    assert delivery.reason == (
        "no channel reaches this customer; email: no consent; sms: no consent"
    )


def test_push_needs_a_live_device_token(segment):
    dee = Customer.objects.create(preferred_channel="push")
    consent(dee, "push")
    member_of(dee, segment)
    PushToken.objects.create(customer=dee, token="t1", platform="ios", revoked_at=NOON)
    campaign = campaign_with(segment, channels=("push",))
    plan(campaign)
    assert Delivery.objects.get(customer=dee).reason.endswith("push: no device token")

    PushToken.objects.create(customer=dee, token="t2", platform="ios")
    plan(campaign, key="2")
    assert Delivery.objects.get(customer=dee, run__key="2").channel == "push"


def test_planning_twice_writes_nothing_new(segment):
    eve = Customer.objects.create(email="eve@example.com")
    consent(eve, "email")
    member_of(eve, segment)
    campaign = campaign_with(segment)
    run = plan(campaign)

    assert run_plan(run=run) == 0
    assert Delivery.objects.filter(customer=eve).count() == 1


def test_targeted_message_wins_over_the_general_one(segment):
    vip = Segment.objects.create(name="VIP", slug="vip", rules={})
    joe = Persona.objects.create(
        name="Joe", slug="joe", status=Persona.Status.ACTIVE, preferred_channels=[]
    )
    a = Customer.objects.create(email="a@example.com")
    b = Customer.objects.create(email="b@example.com")
    c = Customer.objects.create(email="c@example.com")
    for customer in (a, b, c):
        consent(customer, "email")
    member_of(a, segment, persona=joe)
    member_of(b, segment, vip)
    member_of(c, segment)
    campaign = campaign_with(segment, channels=("email",))
    Message.objects.create(
        campaign=campaign, name="for Joe", channel="email", persona=joe
    )
    Message.objects.create(
        campaign=campaign, name="for VIPs", channel="email", segment=vip
    )
    plan(campaign)

    names = dict(Delivery.objects.values_list("customer__email", "message__name"))
    assert names == {
        "a@example.com": "for Joe",
        "b@example.com": "for VIPs",
        "c@example.com": "general email",
    }


def test_a_channel_without_a_message_is_never_picked(segment):
    fay = Customer.objects.create(email="fay@example.com")
    consent(fay, "email")
    member_of(fay, segment)
    campaign = campaign_with(segment, channels=("email",))
    campaign.messages.filter(channel="email").delete()
    plan(campaign)

    delivery = Delivery.objects.get(customer=fay)
    assert delivery.status == Delivery.Status.SKIPPED
    assert delivery.reason.startswith("no channel reaches this customer; sms:")
    assert "email" not in delivery.reason


def test_weighted_variants_split_by_weight_and_stay_put(segment):
    campaign = campaign_with(segment, channels=("email",))
    campaign.messages.filter(channel="email").delete()
    Message.objects.create(campaign=campaign, name="A", channel="email", weight=3)
    Message.objects.create(campaign=campaign, name="B", channel="email", weight=1)
    customers = Customer.objects.bulk_create(
        Customer(email=f"w{i}@example.com") for i in range(800)
    )
    Consent.objects.bulk_create(
        Consent(
            customer=c, channel="email", status="granted", source="store", wording="y"
        )
        for c in customers
    )
    CustomerSegmentState.objects.bulk_create(
        CustomerSegmentState(customer=c, segment_ids=[segment.pk]) for c in customers
    )
    plan(campaign, key="1")
    plan(campaign, key="2", due=NOON + timedelta(days=8))

    first = dict(
        Delivery.objects.filter(run__key="1").values_list("customer", "message__name")
    )
    second = dict(
        Delivery.objects.filter(run__key="2").values_list("customer", "message__name")
    )
    assert first == second
    share_a = sum(name == "A" for name in first.values()) / len(first)
    assert 0.68 < share_a < 0.82


def test_control_group_is_the_holdout_share_and_the_same_on_every_run(segment):
    campaign = campaign_with(segment, channels=("email",), holdout=20)
    customers = Customer.objects.bulk_create(
        Customer(email=f"h{i}@example.com") for i in range(1000)
    )
    CustomerSegmentState.objects.bulk_create(
        CustomerSegmentState(customer=c, segment_ids=[segment.pk]) for c in customers
    )
    plan(campaign, key="1")
    plan(campaign, key="2", due=NOON + timedelta(days=8))

    held = {
        key: set(
            Delivery.objects.filter(
                run__key=key, status=Delivery.Status.HELD_OUT
            ).values_list("customer", flat=True)
        )
        for key in ("1", "2")
    }
    assert held["1"] == held["2"]
    assert 0.16 < len(held["1"]) / 1000 < 0.24
    # Another campaign holds back other customers.
    other = campaign_with(segment, channels=("email",), holdout=20, slug="other")
    plan(other, key="x")
    other_held = set(
        Delivery.objects.filter(run__campaign=other, status="held_out").values_list(
            "customer", flat=True
        )
    )
    assert len(other_held & held["1"]) < 0.4 * len(held["1"])


def test_frequency_cap_skips_customers_with_enough_messages(segment, settings):
    settings.CAMPAIGN_FREQUENCY_CAP = 2
    gus = Customer.objects.create(email="gus@example.com")
    consent(gus, "email")
    member_of(gus, segment)
    earlier = campaign_with(segment, channels=("email",), slug="earlier")
    plan(earlier, key="a", due=NOON - timedelta(days=2))
    plan(earlier, key="b", due=NOON - timedelta(days=1))
    campaign = campaign_with(segment, channels=("email",))

    plan(campaign)

    delivery = Delivery.objects.get(campaign=campaign, customer=gus)
    assert delivery.status == Delivery.Status.SKIPPED
    assert delivery.reason == (
        "frequency cap: already 2 marketing messages within 7 days"
    )


@pytest.mark.quiet_hours
def test_quiet_hours_defer_to_the_morning_in_the_home_stores_zone(segment):
    store = Store.objects.create(
        name="New York", code="NYC", time_zone="America/New_York"
    )
    hal = Customer.objects.create(email="hal@example.com", home_store=store)
    ida = Customer.objects.create(email="ida@example.com")
    for customer in (hal, ida):
        consent(customer, "email")
        member_of(customer, segment)
    # 07:00 in Amsterdam, 01:00 in New York: both inside 21:00-08:00.
    due = datetime(2027, 1, 12, 6, 0, tzinfo=UTC)
    plan(campaign_with(segment, channels=("email",)), due=due)

    hal_d = Delivery.objects.get(customer=hal)
    ida_d = Delivery.objects.get(customer=ida)
    assert hal_d.status == ida_d.status == Delivery.Status.DEFERRED
    assert hal_d.planned_at == datetime(2027, 1, 12, 13, 0, tzinfo=UTC)
    assert ida_d.planned_at == datetime(2027, 1, 12, 7, 0, tzinfo=UTC)


def test_erased_and_excluded_customers_are_not_in_the_audience(segment):
    lapsed = Segment.objects.create(name="Lapsed", slug="lapsed", rules={})
    kim = Customer.objects.create(email="kim@example.com")
    lou = Customer.objects.create(email="lou@example.com", erased_at=NOON)
    for customer in (kim, lou):
        consent(customer, "email")
    member_of(kim, segment, lapsed)
    member_of(lou, segment)
    campaign = campaign_with(segment)
    campaign.exclude_segments.add(lapsed)

    plan(campaign)

    assert not Delivery.objects.exists()


def test_preview_counts_what_planning_writes(segment):
    for i in range(6):
        customer = Customer.objects.create(email=f"p{i}@example.com")
        if i % 2:
            consent(customer, "email")
        member_of(customer, segment)
    campaign = campaign_with(segment, channels=("email",))

    preview = audience_preview(campaign=campaign, at=NOON)
    plan(campaign)

    assert preview.audience == 6
    assert preview.planned == Delivery.objects.filter(status="planned").count() == 3
    assert preview.skipped == 3
    assert preview.by_channel == {"email": 3}
    assert sum(preview.skipped_reasons.values()) == 3
    assert not Delivery.objects.filter(run__key="preview").exists()


def test_planning_takes_the_same_queries_for_few_or_many(
    segment, django_assert_max_num_queries
):
    campaign = campaign_with(segment)
    for count in (2, 30):
        customers = Customer.objects.bulk_create(
            Customer(email=f"q{count}-{i}@example.com") for i in range(count)
        )
        CustomerSegmentState.objects.bulk_create(
            CustomerSegmentState(customer=c, segment_ids=[segment.pk])
            for c in customers
        )
        run = CampaignRun.objects.create(campaign=campaign, key=str(count), due_at=NOON)
        with django_assert_max_num_queries(13):
            run_plan(run=run)


# --- the oracle ---------------------------------------------------------------

ZONES = ["Europe/Amsterdam", "America/New_York", "Asia/Tokyo"]

customer_st = st.fixed_dictionaries(
    {
        "email": st.booleans(),
        "phone": st.booleans(),
        "post": st.booleans(),
        "push": st.booleans(),
        "preferred": st.sampled_from(
            ["", "email", "sms", "push", "social", "post", "phone"]
        ),
        "consents": st.dictionaries(
            st.sampled_from(CHANNELS), st.sampled_from(["granted", "withdrawn"])
        ),
        "persona": st.sampled_from([None, 0, 1]),
        "segments": st.sets(st.sampled_from([0, 1, 2])),
        "zone": st.sampled_from([None, *ZONES]),
        "recent": st.integers(min_value=0, max_value=3),
    }
)
PERSONA_PREFS = [["push", "sms"], ["social", "email", "post"]]
SEGMENT_PREFS = [[], ["post", "email"], ["sms"]]


def oracle_channel(plan_, campaign_channels):
    def reaches(channel):
        address = {
            "email": plan_["email"],
            "sms": plan_["phone"],
            "push": plan_["push"],
            "social_ads": plan_["email"] or plan_["phone"],
            "post": plan_["post"],
        }[channel]
        return plan_["consents"].get(channel) == "granted" and address

    sources = []
    own = PREFERENCE_CHANNELS.get(plan_["preferred"])
    if own:
        sources.append([own])
    if plan_["persona"] is not None:
        sources.append(
            [PREFERENCE_CHANNELS[c] for c in PERSONA_PREFS[plan_["persona"]]]
        )
    # Included segments are 0 and 1 (in that order); 2 is excluded.
    for index in (0, 1):
        if index in plan_["segments"] and SEGMENT_PREFS[index]:
            sources.append(SEGMENT_PREFS[index])
            break
    sources.append(campaign_channels)
    for source in sources:
        for channel in source:
            if reaches(channel):
                return channel
    return ""


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    plans=st.lists(customer_st, max_size=10),
    due_hour=st.integers(min_value=0, max_value=23),
    cap=st.integers(min_value=1, max_value=3),
)
@pytest.mark.django_db
def test_planning_agrees_with_the_oracle(plans, due_hour, cap):
    with transaction.atomic():
        due = datetime(2027, 3, 28, due_hour, 30, tzinfo=UTC)  # a DST change day
        stores = {
            zone: Store.objects.create(name=zone, code=zone[-5:], time_zone=zone)
            for zone in ZONES
        }
        personas = [
            Persona.objects.create(
                name=f"P{i}",
                slug=f"p{i}",
                status="active",
                preferred_channels=prefs,
                priority=i,
            )
            for i, prefs in enumerate(PERSONA_PREFS)
        ]
        segments = [
            Segment.objects.create(
                name=f"S{i}", slug=f"s{i}", rules={}, channel_preference=prefs
            )
            for i, prefs in enumerate(SEGMENT_PREFS)
        ]
        campaign = Campaign.objects.create(
            name="C",
            slug="c",
            channels=["email", "sms"],
            holdout_percent=0,
            frequency_cap=cap,
        )
        campaign.include_segments.add(segments[0], segments[1])
        campaign.include_personas.add(personas[0])
        campaign.exclude_segments.add(segments[2])
        for channel in CHANNELS:
            Message.objects.create(campaign=campaign, name=channel, channel=channel)
        other = Campaign.objects.create(name="O", slug="o", priority=5)
        other_run = CampaignRun.objects.create(campaign=other, key="o", due_at=due)

        customers = []
        for i, p in enumerate(plans):
            customer = Customer.objects.create(
                email=f"c{i}@example.com" if p["email"] else None,
                phone="+3161234567" + str(i % 10) if p["phone"] else "",
                address="Oudegracht 1" if p["post"] else "",
                postal_code="3511 AB",
                city="Utrecht",
                preferred_channel=p["preferred"],
                home_store=stores[p["zone"]] if p["zone"] else None,
            )
            customers.append(customer)
            if p["push"]:
                PushToken.objects.create(
                    customer=customer, token=f"t{i}", platform="ios"
                )
            for channel, status in p["consents"].items():
                consent(customer, channel, status)
            member_of(
                customer,
                *[segments[s] for s in p["segments"]],
                persona=personas[p["persona"]] if p["persona"] is not None else None,
            )
            Delivery.objects.bulk_create(
                Delivery(
                    campaign=other,
                    run=CampaignRun.objects.create(
                        campaign=other, key=f"o{i}-{n}", due_at=due
                    ),
                    customer=customer,
                    channel="email",
                    status="sent",
                    planned_at=due - timedelta(days=n + 1),
                )
                for n in range(p["recent"])
            )
        assert other_run

        run = CampaignRun.objects.create(campaign=campaign, key="1", due_at=due)
        run_plan(run=run)

        got = {
            d.customer_id: (d.status, d.channel, d.planned_at)
            for d in Delivery.objects.filter(run=run)
        }
        expected = {}
        for customer, p in zip(customers, plans, strict=True):
            in_audience = (
                bool(p["segments"] & {0, 1}) or p["persona"] == 0
            ) and 2 not in p["segments"]
            if not in_audience:
                continue
            channel = oracle_channel(p, ["email", "sms"])
            zone = ZoneInfo(p["zone"] or "Europe/Amsterdam")
            if not channel or p["recent"] >= cap:
                expected[customer.pk] = ("skipped", "", due)
            elif (
                channel in ("email", "sms", "push")
                and quiet_hours_end(due, zone) != due
            ):
                expected[customer.pk] = (
                    "deferred",
                    channel,
                    quiet_hours_end(due, zone),
                )
            else:
                expected[customer.pk] = ("planned", channel, due)
        assert got == expected
        transaction.set_rollback(True)


def test_a_higher_priority_campaign_bumps_lower_ones_over_the_cap(segment, settings):
    settings.CAMPAIGN_FREQUENCY_CAP = 1
    max_ = Customer.objects.create(email="max@example.com")
    consent(max_, "email")
    member_of(max_, segment)
    newsletter = campaign_with(segment, channels=("email",), slug="news", priority=0)
    plan(newsletter)
    launch = campaign_with(segment, channels=("email",), slug="launch", priority=10)
    launch.name = "Launch"
    launch.save()

    plan(launch)

    assert Delivery.objects.get(campaign=launch).status == Delivery.Status.PLANNED
    bumped = Delivery.objects.get(campaign=newsletter)
    assert bumped.status == Delivery.Status.SKIPPED
    assert bumped.reason == "frequency cap: campaign Launch has a higher priority"
