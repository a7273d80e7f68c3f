"""`manage.py campaigns_tick`: one minute of beat's campaign work, now."""

from django.core.management.base import BaseCommand

from campaigns.models import Delivery
from campaigns.tasks import campaigns_tick_task


class Command(BaseCommand):
    help = (
        "Run beat's campaign tick once, in this process: plan due runs and "
        "triggered entries, mark lost sends unknown, finish runs and start the "
        "senders (in embedded mode they send here; with REDIS_URL the workers do)."
    )

    def handle(self, *args, **options):
        campaigns_tick_task()
        counts = {
            status: Delivery.objects.filter(status=status).count()
            for status in (
                Delivery.Status.PLANNED,
                Delivery.Status.DEFERRED,
                Delivery.Status.SENDING,
                Delivery.Status.SENT,
                Delivery.Status.UNKNOWN,
            )
        }
        self.stdout.write(
            "Campaign tick done; deliveries now "
            + ", ".join(f"{status} {n}" for status, n in counts.items())
            + "."
        )
