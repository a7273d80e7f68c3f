"""The demo campaigns that `seed_demo` leaves for the marketer to try."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from campaigns.demo import DEMO_CAMPAIGNS, demo_campaigns_ensure
from campaigns.models import Campaign, Message
from campaigns.services.campaigns import campaign_schedule_check
from crm import hooks
from personas.models import Persona
from segments.models import Segment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed_demo(**options) -> None:
    call_command("seed_demo", stdout=io.StringIO(), stderr=io.StringIO(), **options)


def campaign_rows() -> list[tuple]:
    return sorted(
        Campaign.objects.values_list("slug", "kind", "status", "trigger_segment__slug")
    )


def message_rows() -> list[tuple]:
    return sorted(
        Message.objects.values_list(
            "campaign__slug", "name", "channel", "persona__slug", "segment__slug"
        )
    )


def test_seed_demo_leaves_the_demo_campaigns_as_drafts():
    seed_demo(customers=60, seed=3)

    assert campaign_rows() == [
        ("spring-collection", "one_off", "draft", None),
        ("we-miss-you", "triggered", "draft", "rfm-at-risk"),
    ]
    assert message_rows() == [
        ("spring-collection", "spring-audience", "social_ads", None, None),
        ("spring-collection", "spring-email", "email", None, None),
        ("spring-collection", "spring-sms", "sms", None, None),
        ("spring-collection", "spring-sms-sarah", "sms", "sarah", None),
        ("we-miss-you", "miss-you-email", "email", None, None),
    ]
    spring = Campaign.objects.get(slug="spring-collection")
    assert set(spring.include_segments.values_list("slug", flat=True)) == {
        "rfm-champions",
        "rfm-loyal",
    }
    assert spring.channels == ["email", "sms", "social_ads"]
    assert spring.created_by is None


def test_each_demo_campaign_can_be_scheduled_as_it_is():
    seed_demo(customers=60, seed=3)
    now = timezone.now()

    for campaign in Campaign.objects.all():
        # Raises (listing every problem) when scheduling would be refused.
        campaign_schedule_check(campaign=campaign, now=now)


def test_seeding_again_adds_no_second_demo_campaign():
    # Given a seeded demo whose campaigns the marketer has started to edit
    seed_demo(customers=60, seed=3)
    Campaign.objects.filter(slug="spring-collection").update(name="Spring, edited")
    before = (campaign_rows(), message_rows())

    # When the demo is seeded again, and the hook is called once more
    seed_demo(customers=60, seed=3, if_empty=True)
    hooks.demo_seeded.send()

    # Then nothing is duplicated and the edit stays
    assert (campaign_rows(), message_rows()) == before
    assert Campaign.objects.get(slug="spring-collection").name == "Spring, edited"
    assert demo_campaigns_ensure() == 0


def test_a_deleted_demo_campaign_comes_back_and_the_other_is_left_alone():
    seed_demo(customers=60, seed=3)
    Campaign.objects.filter(slug="we-miss-you").delete()
    spring_id = Campaign.objects.get(slug="spring-collection").pk

    assert demo_campaigns_ensure() == 1

    assert Campaign.objects.get(slug="spring-collection").pk == spring_id
    assert Campaign.objects.filter(slug="we-miss-you").count() == 1


def test_demo_campaigns_bring_their_personas_when_those_are_missing():
    # The campaigns app's receiver runs before the personas app's (INSTALLED_APPS
    # order), so it cannot count on the demo personas being there already.
    seed_demo(customers=0)
    Campaign.objects.all().delete()
    Persona.objects.all().delete()

    assert demo_campaigns_ensure() == len(DEMO_CAMPAIGNS)

    sarah = Persona.objects.get(slug="sarah")
    assert Message.objects.get(name="spring-sms-sarah").persona == sarah


def test_a_missing_demo_segment_skips_that_campaign_only():
    seed_demo(customers=0)
    Campaign.objects.all().delete()
    Segment.objects.filter(slug="rfm-at-risk").delete()

    assert demo_campaigns_ensure() == 1

    assert list(Campaign.objects.values_list("slug", flat=True)) == [
        "spring-collection"
    ]
