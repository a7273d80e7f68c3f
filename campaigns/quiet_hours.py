"""Quiet hours: when a message due now may go, in the customer's local time.

The quiet period runs from its start to its end in local wall-clock time (by
default 21:00 to 08:00, over midnight). A message due inside it waits until the
period ends, never dropped. Wall-clock times are resolved in the zone itself, so a
daylight-saving change moves the end with the clocks: "08:00" stays 08:00 local.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings


def parse_quiet_hours(value: tuple[str, str] | list[str]) -> tuple[time, time]:
    start, end = (time.fromisoformat(part.strip()) for part in value)
    return start, end


def quiet_hours() -> tuple[time, time]:
    return parse_quiet_hours(settings.CAMPAIGN_QUIET_HOURS)


def _is_quiet(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(
    moment: datetime, zone: ZoneInfo, hours: tuple[time, time] | None = None
) -> datetime:
    """`moment` itself when it is not in the quiet hours of `zone`, otherwise the
    end of that quiet period (aware, in UTC)."""
    start, end = hours or quiet_hours()
    local = moment.astimezone(zone)
    if not _is_quiet(local.time(), start, end):
        return moment
    day = local.date() if local.time() < end else local.date() + timedelta(days=1)
    # A wall time that a spring-forward gap skips resolves to the same instant as
    # the time just after the gap (fold=0 through UTC), which is what waiting for
    # 08:00 means on such a day.
    wake = datetime.combine(day, end, tzinfo=zone)
    wake = wake.astimezone(UTC).astimezone(zone)
    return max(wake.astimezone(UTC), moment.astimezone(UTC))
