"""Segment rules on one named campaign: "opened campaign X within N days".

Contacts are recorded through the CRM and campaign services, and memberships come
from the segment engine (the incremental drain, the time path and the whole-base
recompute), never from the compiled condition alone.
"""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns.channels import Outcome
from campaigns.rule_fields import OUTCOMES
from campaigns.services.campaigns import campaign_delete
from campaigns.services.sending import outcomes_record
from campaigns.tracking import (
    OPEN_SALT,
    UNSUBSCRIBE_SALT,
    click_token,
    delivery_token,
    email_click_record,
    email_open_record,
    email_unsubscribe,
)
from crm.models import Contact
from crm.services import consent_record, contact_record, customer_create
from segments.fields import FIELDS
from segments.models import CustomerSegmentState, Segment
from segments.query import field_syntax, format_rule, parse
from segments.selectors import segment_explain
from segments.services import dirty_drain, due_refresh, recompute_all, segment_create
from tests.campaigns.conftest import campaign_make, delivery_make, message_make
from tests.crm.factories import CustomerFactory
from tests.segments.factories import member_ids, memberships

pytestmark = pytest.mark.django_db

KINDS = {outcome.field: outcome.kind for outcome in OUTCOMES}
CHANNELS = {Contact.Kind.MESSAGE_RECEIVED: "sms"}


@pytest.fixture(autouse=True)
def only_test_segments(db):
    # The default RFM segments would join every buyer; these tests make their own.
    Segment.objects.update(is_active=False)


def record(customer, kind: str, campaign, *, at: datetime) -> Contact:
    return contact_record(
        customer=customer,
        kind=kind,
        channel=CHANNELS.get(kind, "email"),
        occurred_at=at,
        payload={"campaign": campaign.pk, "delivery": 1, "message": 1},
    )


@pytest.mark.parametrize("field", sorted(KINDS))
def test_segment_gains_the_customer_with_the_contact_and_loses_them_n_days_later(
    field,
):
    spring = campaign_make(name="Spring", slug="spring")
    autumn = campaign_make(name="Autumn", slug="autumn")
    segment = segment_create(name="Responders", query=f'{field}("spring", 7)')
    customer, other = CustomerFactory(), CustomerFactory()
    now = timezone.now()

    # The same kind for another campaign, and another kind for this one: not yet.
    record(customer, KINDS[field], autumn, at=now - timedelta(days=1))
    other_kind = (
        Contact.Kind.WEB_VISIT
        if KINDS[field] != Contact.Kind.WEB_VISIT
        else Contact.Kind.PURCHASE
    )
    record(customer, other_kind, spring, at=now - timedelta(days=1))
    dirty_drain()
    assert member_ids(segment) == set()

    contact = record(customer, KINDS[field], spring, at=now - timedelta(days=2))
    record(other, KINDS[field], spring, at=now - timedelta(days=8))
    dirty_drain()
    assert member_ids(segment) == {customer.pk}

    # The engine re-checks the customer when the contact leaves the window.
    flips_at = contact.occurred_at + timedelta(days=7)
    state = CustomerSegmentState.objects.get(customer=customer)
    assert state.next_check_at == flips_at
    assert due_refresh(now=flips_at - timedelta(minutes=1)) == 0
    assert member_ids(segment) == {customer.pk}
    assert due_refresh(now=flips_at + timedelta(seconds=1)) == 1
    assert member_ids(segment) == set()

    # A newer contact brings them back; the whole-base pass agrees.
    record(customer, KINDS[field], spring, at=flips_at)
    dirty_drain()
    assert member_ids(segment) == {customer.pk}
    assert recompute_all(now=flips_at + timedelta(hours=1)) == 0
    assert recompute_all(now=flips_at + timedelta(days=8)) == 1
    assert member_ids(segment) == set()


def test_the_fields_read_what_sending_and_the_tracking_links_record():
    spring = campaign_make(name="Spring", slug="spring")
    message = message_make(spring)
    customer = customer_create(email="ann@example.com", first_name="Ann")
    consent_record(
        customer=customer,
        channel="email",
        granted=True,
        source="store",
        wording="Email me offers",
    )
    segments = {
        field: segment_create(name=field, query=f'{field}("spring", 30)')
        for field in KINDS
    }
    delivery = delivery_make(customer, message=message)
    bounced = delivery_make(
        CustomerFactory(email="gone@example.com"),
        message=message,
    )

    def members() -> dict[str, set[int]]:
        dirty_drain()
        return {field: member_ids(segment) for field, segment in segments.items()}

    assert all(not ids for ids in members().values())
    outcomes_record(
        deliveries=[delivery, bounced],
        outcomes={
            delivery.pk: Outcome(sent=True, provider_message_id="<1@shop>"),
            bounced.pk: Outcome(sent=False, error="550 no such user", permanent=True),
        },
        now=timezone.now(),
    )
    now_in = members()
    assert now_in["campaign_received_within_days"] == {customer.pk}
    assert now_in["campaign_bounced_within_days"] == {bounced.customer_id}
    assert now_in["campaign_opened_within_days"] == set()

    email_open_record(token=delivery_token(delivery_id=delivery.pk, salt=OPEN_SALT))
    assert members()["campaign_opened_within_days"] == {customer.pk}
    email_click_record(
        token=click_token(delivery_id=delivery.pk, url="https://shop.example/sale")
    )
    assert members()["campaign_clicked_within_days"] == {customer.pk}
    email_unsubscribe(
        token=delivery_token(delivery_id=delivery.pk, salt=UNSUBSCRIBE_SALT),
        one_click=True,
    )
    assert members()["campaign_unsubscribed_within_days"] == {customer.pk}


def test_an_unknown_campaign_is_refused_with_the_closest_slugs():
    campaign_make(name="Spring collection", slug="spring-collection")
    with pytest.raises(ValidationError) as typed:
        segment_create(
            name="Openers",
            query='campaign_opened_within_days("spring-colection", 30)',
        )
    assert (
        "unknown campaign 'spring-colection'; did you mean 'spring-collection'?"
        in str(typed.value)
    )
    with pytest.raises(ValidationError) as as_json:
        segment_create(
            name="Clickers",
            rules={
                "field": "campaign_clicked_within_days",
                "op": "eq",
                "value": {"campaign": "winter", "days": 30},
            },
        )
    assert "unknown campaign 'winter'; use the slug of an existing campaign" in str(
        as_json.value
    )
    with pytest.raises(ValidationError) as no_days:
        segment_create(
            name="Clickers",
            rules={
                "field": "campaign_clicked_within_days",
                "op": "eq",
                "value": {"campaign": "spring-collection"},
            },
        )
    assert 'expected {"campaign": slug, "days": N}' in str(no_days.value)


@pytest.mark.parametrize("field", sorted(KINDS))
def test_the_text_syntax_round_trips(field):
    rule = {
        "all": [
            {"field": field, "op": "eq", "value": {"campaign": "spring", "days": 14}},
            {
                "not": {
                    "field": field,
                    "op": "eq",
                    "value": {"campaign": "autumn", "days": 0},
                }
            },
        ]
    }
    text = f'{field}("spring", 14) and not {field}("autumn", 0)'
    assert format_rule(rule) == text
    assert parse(text) == rule
    assert field_syntax(field, FIELDS[field].ops) == f'{field}("campaign-slug", N)'


def test_the_explanation_says_when_the_customer_last_opened_the_campaign():
    spring = campaign_make(name="Spring", slug="spring")
    segment = segment_create(
        name="Openers", query='campaign_opened_within_days("spring", 30)'
    )
    opened, never = CustomerFactory(), CustomerFactory()
    record(
        opened,
        Contact.Kind.EMAIL_OPEN,
        spring,
        at=timezone.now() - timedelta(days=3, hours=1),
    )
    dirty_drain()

    tree = segment_explain(customer=opened, segment=segment)
    assert tree["result"] is True
    assert tree["says"] == (
        "last opened campaign spring 3 days ago; the rule wants within the last 30 days"
    )
    tree = segment_explain(customer=never, segment=segment)
    assert tree["result"] is False
    assert tree["says"] == (
        "never opened campaign spring; the rule wants within the last 30 days"
    )


def test_a_deleted_campaign_matches_nobody_instead_of_breaking_the_engine():
    draft = campaign_make(name="Draft", slug="draft")
    customer = CustomerFactory()
    record(customer, Contact.Kind.MESSAGE_RECEIVED, draft, at=timezone.now())
    segment = segment_create(
        name="Got it", query='campaign_received_within_days("draft", 30)'
    )
    recompute_all()
    assert member_ids(segment) == {customer.pk}

    campaign_delete(campaign=draft)
    recompute_all()
    assert member_ids(segment) == set()


# The oracle ---------------------------------------------------------------------------

CAMPAIGNS = ("spring", "autumn")
CONTACT_KINDS = (*KINDS.values(), Contact.Kind.WEB_VISIT)

contacts_st = st.lists(
    st.tuples(
        st.sampled_from(CAMPAIGNS),
        st.sampled_from(CONTACT_KINDS),
        # Hours before the clock: up to 40 days back, a few in the future.
        st.integers(-48, 40 * 24),
    ),
    max_size=5,
)
rules_st = st.tuples(
    st.sampled_from(sorted(KINDS)),
    st.sampled_from(CAMPAIGNS),
    st.sampled_from([0, 1, 7, 30]),
    st.booleans(),  # negated
)


def oracle(rule: tuple, contacts: list[tuple], now: datetime, base: datetime) -> bool:
    """Whether a customer with these contacts (campaign, kind, hours before `base`)
    meets the rule at `now`, in plain Python."""
    field, campaign, days, negated = rule
    held = any(
        c == campaign
        and kind == KINDS[field]
        and base - timedelta(hours=hours) >= now - timedelta(days=days)
        for c, kind, hours in contacts
    )
    return held != negated


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    customers=st.lists(contacts_st, min_size=1, max_size=5),
    rules=st.lists(rules_st, min_size=1, max_size=3),
    later_hours=st.integers(1, 35 * 24),
)
def test_membership_matches_a_plain_python_oracle_as_contacts_and_time_pass(
    db, customers, rules, later_hours
):
    with transaction.atomic():
        Segment.objects.update(is_active=False)
        campaigns = {slug: campaign_make(name=slug, slug=slug) for slug in CAMPAIGNS}
        segments = []
        for index, (field, campaign, days, negated) in enumerate(rules):
            query = f'{field}("{campaign}", {days})'
            segments.append(
                segment_create(
                    name=f"Random {index}",
                    slug=f"random-{index}",
                    query=f"not {query}" if negated else query,
                )
            )
        base = timezone.now()
        people = []
        for index, contacts in enumerate(customers):
            customer = customer_create(email=f"c{index}@example.com")
            dirty_drain()
            for campaign, kind, hours in contacts:
                record(
                    customer,
                    kind,
                    campaigns[campaign],
                    at=base - timedelta(hours=hours),
                )
                dirty_drain()
            people.append(customer)

        def expected(now: datetime) -> set[tuple[int, int]]:
            return {
                (segment.pk, customer.pk)
                for segment, rule in zip(segments, rules, strict=True)
                for customer, contacts in zip(people, customers, strict=True)
                if oracle(rule, contacts, now, base)
            }

        # Drained moments after `base`: within-0-days contacts at `base` have left.
        drained_at = timezone.now()
        assert memberships() == expected(drained_at)

        # Time passes with no contact: only the time path moves anyone.
        later = drained_at + timedelta(hours=later_hours)
        due_refresh(now=later)
        assert memberships() == expected(later)
        assert recompute_all(now=later) == 0
        transaction.set_rollback(True)
