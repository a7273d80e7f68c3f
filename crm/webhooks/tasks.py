"""Thin Celery tasks of the webhooks: ids in, services do the work."""

from celery import shared_task


@shared_task(acks_late=True, soft_time_limit=30, time_limit=40)
def webhook_deliver_task(delivery_id: int) -> str:
    """Attempt one delivery; a failure is rescheduled in the database, with backoff."""
    from .services import webhook_delivery_attempt

    return webhook_delivery_attempt(delivery_id=delivery_id)


@shared_task(acks_late=True, soft_time_limit=300, time_limit=330)
def webhook_deliveries_due_task() -> int:
    """Retry the deliveries whose backoff has passed (run by beat)."""
    from .services import webhook_deliveries_retry_due

    return webhook_deliveries_retry_due()
