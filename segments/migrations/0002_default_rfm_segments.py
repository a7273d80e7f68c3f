"""The eight RFM segments every shop starts with, defined on `rfm_segment`.

Their members are computed by the next whole-base recompute (nightly, or
`python manage.py rebuild_segments`), once RFM thresholds exist.
"""

from django.db import migrations

RFM_SEGMENTS = [
    (
        "champions",
        "Champions",
        "Bought recently, buy often and spend the most. Reward them; they try new "
        "products first and tell their friends.",
    ),
    (
        "loyal",
        "Loyal customers",
        "Buy often and not long ago. Ask them for reviews and offer the loyalty "
        "programme's higher tiers.",
    ),
    (
        "potential_loyalist",
        "Potential loyalists",
        "Recent customers with more than one order. A membership or a personal "
        "recommendation can make them loyal.",
    ),
    (
        "new",
        "New customers",
        "Bought recently, but only once. Welcome them and help them to a second "
        "purchase.",
    ),
    (
        "at_risk",
        "At risk",
        "Used to buy often, but not for a while. Reach out with a personal offer "
        "before they are gone.",
    ),
    (
        "cant_lose",
        "Can't lose them",
        "Among the biggest spenders and most frequent buyers, but they have not "
        "bought for a long time. Win them back.",
    ),
    (
        "hibernating",
        "Hibernating",
        "Bought a while ago, rarely and for little. Remind them of what is new, "
        "without discounting too much.",
    ),
    (
        "lost",
        "Lost",
        "Have not bought for the longest time. Try one reactivation campaign; do "
        "not spend much more on them.",
    ),
]


def slug_of(name: str) -> str:
    return "rfm-" + name.replace("_", "-")


def create_rfm_segments(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    for rfm_name, name, description in RFM_SEGMENTS:
        Segment.objects.get_or_create(
            slug=slug_of(rfm_name),
            defaults={
                "name": name,
                "description": description,
                "kind": "value",
                "rules": {"field": "rfm_segment", "op": "eq", "value": rfm_name},
                "is_active": True,
            },
        )


def remove_rfm_segments(apps, schema_editor):
    Segment = apps.get_model("segments", "Segment")
    Segment.objects.filter(
        slug__in=[slug_of(name) for name, _, _ in RFM_SEGMENTS]
    ).delete()


class Migration(migrations.Migration):
    dependencies = [("segments", "0001_initial")]

    operations = [migrations.RunPython(create_rfm_segments, remove_rfm_segments)]
