"""Celery tasks of the CRM: thin wrappers that load ids and call services."""

import logging
import smtplib

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.utils.time import get_exponential_backoff_interval

logger = logging.getLogger(__name__)

# Retries wait 30 s, 1, 2, 4 and 8 minutes: long enough to ride out an SMTP server
# restart, short enough that the clerk sees "failed" within the quarter hour.
RECEIPT_EMAIL_MAX_RETRIES = 5
RECEIPT_EMAIL_BACKOFF_FACTOR = 30
RECEIPT_EMAIL_BACKOFF_MAX = 15 * 60


def receipt_email_retry_countdown(retries: int) -> int:
    """Seconds to wait before retry number `retries + 1`."""
    return get_exponential_backoff_interval(
        factor=RECEIPT_EMAIL_BACKOFF_FACTOR,
        retries=retries,
        maximum=RECEIPT_EMAIL_BACKOFF_MAX,
    )


def _is_permanent(exc: BaseException) -> bool:
    """A 5xx reply (unknown mailbox, rejected message) will not pass on a retry."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _message in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return exc.smtp_code >= 500
    return False


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=RECEIPT_EMAIL_MAX_RETRIES,
    soft_time_limit=60,
    time_limit=90,
)
def receipt_email_send_task(self, receipt_id: int) -> str:
    """Email a receipt; retry transient SMTP failures with backoff, then mark the
    receipt's email failed so the desk offers to resend it."""
    from crm.services.receipt_email import receipt_email_fail, receipt_email_send

    try:
        return receipt_email_send(receipt_id=receipt_id)
    except (smtplib.SMTPException, OSError, SoftTimeLimitExceeded) as exc:
        attempt = self.request.retries + 1
        if _is_permanent(exc) or self.request.retries >= self.max_retries:
            logger.warning(
                "receipt email failed: receipt_id=%s attempts=%s error=%s",
                receipt_id,
                attempt,
                type(exc).__name__,
            )
            receipt_email_fail(receipt_id=receipt_id)
            return "failed"
        logger.info(
            "receipt email attempt %s failed, retrying: receipt_id=%s error=%s",
            attempt,
            receipt_id,
            type(exc).__name__,
        )
        raise self.retry(
            exc=exc, countdown=receipt_email_retry_countdown(self.request.retries)
        ) from exc
    except Exception:
        # A bug, not the mail server: retrying will not help, but the clerk must
        # not see "sending" for ever.
        receipt_email_fail(receipt_id=receipt_id)
        raise


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1900)
def stats_rebuild_range_task(first_id: int, last_id: int, run: str, ranges: int) -> int:
    """Rebuild the statistics of one customer-id range; the last to finish calls the
    `stats_rebuilt` hook."""
    from crm import fanout, hooks
    from crm.services.stats import customer_stats_refresh_range

    with fanout.range_failure_reported(run, first_id, last_id):
        customer_stats_refresh_range(first_id=first_id, last_id=last_id)
    if fanout.range_done(run, ranges):
        hooks.stats_rebuilt.send(customer_ids=None)
        fanout.run_finish(run)
    return last_id - first_id + 1


def stats_rebuild_dispatch(*, chunk_size: int | None = None) -> tuple[str, int]:
    """Rebuild every customer's statistics as a Celery group; returns (run, ranges)."""
    from crm import fanout

    return fanout.ranges_dispatch(stats_rebuild_range_task, chunk_size=chunk_size)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def idempotency_purge_task() -> int:
    """Forget old Idempotency-Keys (nightly)."""
    from crm.api.idempotency import idempotency_records_purge

    return idempotency_records_purge()
