"""Triggered campaigns read segment entries by time with an overlap, not by the
last SegmentEvent id (an id cursor skips entries that commit late)."""

from django.db import migrations, models
from django.utils import timezone


def cursor_to_time(apps, schema_editor):
    """Read from the first entry after the old id cursor (it was not read yet),
    or from now when there is none."""
    Campaign = apps.get_model("campaigns", "Campaign")
    SegmentEvent = apps.get_model("segments", "SegmentEvent")
    for campaign in Campaign.objects.filter(kind="triggered"):
        first = (
            SegmentEvent.objects.filter(
                segment_id=campaign.trigger_segment_id, pk__gt=campaign.trigger_cursor
            )
            .order_by("occurred_at")
            .values_list("occurred_at", flat=True)
            .first()
        )
        campaign.trigger_read_from = first or timezone.now()
        campaign.save(update_fields=["trigger_read_from"])


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_plan_steps"),
        ("segments", "0005_segment_channel_preference"),
    ]

    operations = [
        migrations.AddField(
            model_name="campaign",
            name="trigger_read_from",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(cursor_to_time, migrations.RunPython.noop),
        migrations.RemoveField(model_name="campaign", name="trigger_cursor"),
    ]
