"""Demo campaigns on the demo's segments and personas, as drafts, so a marketer
finds something to preview and schedule from the first start."""

from typing import Any

from django.db import transaction

from personas.demo import demo_personas_ensure
from personas.models import Persona
from segments.models import Segment

from .models import Campaign
from .services.campaigns import campaign_create

DEMO_CAMPAIGNS: tuple[dict[str, Any], ...] = (
    {
        "name": "Spring collection",
        "slug": "spring-collection",
        "kind": Campaign.Kind.ONE_OFF,
        "description": (
            "The new season for the best customers: email by default, a text for "
            "those who prefer it, a shorter text for Sarah's young online regulars "
            "and an ad audience for those who prefer social media."
        ),
        "audience": {"include_segments": ["rfm-champions", "rfm-loyal"]},
        "channels": ["email", "sms", "social_ads"],
        "holdout_percent": 10,
        "costs": {"email": "0.001", "sms": "0.07", "social_ads": "0.01"},
        "messages": [
            {
                "name": "spring-email",
                "channel": "email",
                "subject": "{{ first_name }}, the spring collection is in",
                "body_text": (
                    "Hi {{ first_name }},\n\nThe spring collection is in at "
                    "{{ store }}. You have {{ points }} points to spend on it."
                ),
                "body_html": (
                    "<p>Hi {{ first_name }},</p><p>The spring collection is in at "
                    "{{ store }}. You have <b>{{ points }}</b> points to spend on "
                    "it.</p>"
                ),
            },
            {
                "name": "spring-sms",
                "channel": "sms",
                "body_text": (
                    "Hi {{ first_name }}, the spring collection is in at {{ store }}."
                ),
            },
            {
                "name": "spring-sms-sarah",
                "channel": "sms",
                "persona": "sarah",
                "body_text": "New drop! Spring styles online now, {{ first_name }}.",
            },
            # Customers who prefer social media (their own choice, or Sarah's)
            # are picked for social_ads first; without a message for it they
            # would be skipped. On an ad platform the text names the audience.
            {
                "name": "spring-audience",
                "channel": "social_ads",
                "body_text": "Spring collection: best customers",
            },
        ],
    },
    {
        "name": "We miss you",
        "slug": "we-miss-you",
        "kind": Campaign.Kind.TRIGGERED,
        "description": (
            "A friendly note an hour after a good customer starts to drift away "
            "(enters At risk), at most once a quarter."
        ),
        "audience": {"include_segments": ["rfm-at-risk"]},
        "trigger": {"segment": "rfm-at-risk", "delay_minutes": 60, "reentry_days": 90},
        "channels": ["email"],
        "holdout_percent": 10,
        "messages": [
            {
                "name": "miss-you-email",
                "channel": "email",
                "subject": "We miss you, {{ first_name }}",
                "body_text": (
                    "Hi {{ first_name }},\n\nIt has been a while. Your {{ points }} "
                    "points are waiting at {{ store }}."
                ),
            },
        ],
    },
)


def _resolved(spec: dict[str, Any]) -> dict[str, Any] | None:
    """`spec` with segment and persona slugs replaced by their rows; None when one
    of them is missing (a database whose demo rows were deleted)."""
    slugs = set(spec["audience"].get("include_segments", []))
    if spec.get("trigger"):
        slugs.add(spec["trigger"]["segment"])
    segments = Segment.objects.in_bulk(slugs, field_name="slug")
    personas = Persona.objects.in_bulk(
        {m["persona"] for m in spec["messages"] if m.get("persona")},
        field_name="slug",
    )
    if len(segments) != len(slugs):
        return None
    spec = dict(spec)
    spec["audience"] = {
        key: [segments[slug] for slug in value]
        for key, value in spec["audience"].items()
    }
    if spec.get("trigger"):
        spec["trigger"] = {
            **spec["trigger"],
            "segment": segments[spec["trigger"]["segment"]],
        }
    messages = []
    for message in spec["messages"]:
        message = dict(message)
        if "persona" in message:
            persona = personas.get(message.pop("persona"))
            if persona is None:
                # The variant needs its persona; the general messages still go.
                continue
            message["persona"] = persona
        messages.append(message)
    spec["messages"] = messages
    return spec


@transaction.atomic
def demo_campaigns_ensure() -> int:
    """`demo_seeded` receiver: create the demo campaigns (drafts) that do not
    exist yet; return how many were made."""
    # The campaigns target demo personas; the personas app's own receiver may run
    # after this one (apps are called in INSTALLED_APPS order), so make sure first.
    demo_personas_ensure()
    made = 0
    for spec in DEMO_CAMPAIGNS:
        if Campaign.objects.filter(slug=spec["slug"]).exists():
            continue
        resolved = _resolved(spec)
        if resolved is None:
            continue
        campaign_create(created_by=None, **resolved)
        made += 1
    return made
