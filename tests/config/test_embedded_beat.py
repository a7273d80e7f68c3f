"""Embedded mode (`make run` without DATABASE_URL and REDIS_URL) runs beat too.

Without a broker there is no worker: beat sends each due task to the in-memory
broker, and with tasks eager the task runs right there in beat's process. This is
what retries webhook deliveries, flips time-based segment rules and runs the
nightly jobs in embedded mode.
"""

from datetime import timedelta
from pathlib import Path

import pytest
from celery.beat import Scheduler
from django.conf import settings
from django.utils import timezone

from config.celery import app as celery_app
from crm.webhooks.models import WebhookDelivery
from crm.webhooks.services import webhook_subscription_create
from tests.api.test_webhooks import Receiver

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.django_db]


def procfile(name: str) -> dict[str, str]:
    lines = (ROOT / "config" / name).read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_make_run_starts_beat_in_embedded_mode_as_with_redis():
    embedded, full = procfile("Procfile.embedded"), procfile("Procfile")

    assert set(embedded) == {"web", "beat"}
    assert embedded["beat"] == full["beat"]
    assert set(full) == {"web", "worker", "beat"}


@pytest.fixture
def eager_memory_broker(settings):
    before = celery_app.conf.task_always_eager, celery_app.conf.broker_url
    celery_app.conf.task_always_eager = True
    celery_app.conf.broker_url = "memory://"
    settings.LOYALIST_WEBHOOK_ALLOW_PRIVATE = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.broker_url = before


def test_beat_retries_a_due_webhook_delivery_in_its_own_process(
    eager_memory_broker, admin_user
):
    with Receiver([200]) as receiver:
        subscription = webhook_subscription_create(
            name="Warehouse",
            url=receiver.url,
            events=["receipt.created"],
            owner=admin_user,
        )
        delivery = WebhookDelivery.objects.create(
            subscription=subscription,
            event="receipt.created",
            body='{"events": []}',
            attempts=1,
            next_attempt_at=timezone.now() - timedelta(seconds=1),
        )
        # As `celery beat` does on start: the task modules of CELERY_IMPORTS.
        celery_app.loader.import_default_modules()
        scheduler = Scheduler(app=celery_app, lazy=True)
        scheduler.update_from_dict(
            {"webhooks-due": settings.CELERY_BEAT_SCHEDULE["webhooks-due"]}
        )

        scheduler.apply_entry(scheduler.schedule["webhooks-due"])

    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    assert [body for _headers, body in receiver.requests] == [b'{"events": []}']
