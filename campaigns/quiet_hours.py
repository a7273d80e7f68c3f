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
    wake = _instant(datetime.combine(day, end, tzinfo=zone))
    if _is_quiet(wake.astimezone(zone).time(), start, end):
        # The end fell in a spring-forward gap and the clocks jumped straight
        # back into the quiet hours (a period that ends a minute before it
        # starts): this period ends the next day.
        wake = _instant(datetime.combine(day + timedelta(days=1), end, tzinfo=zone))
    return max(wake, moment.astimezone(UTC))


def _instant(wall: datetime) -> datetime:
    """The instant (UTC) the clocks of `wall`'s zone first show `wall` or later.

    A wall time that a spring-forward gap skips is never shown: the clocks jump
    from before it to after it, so the answer is the instant of the jump. It lies
    between the two readings of the wall time (with the offset after the jump and
    with the one before), found by bisecting to the second.
    """
    zone = wall.tzinfo
    early = wall.replace(fold=1).astimezone(UTC)
    late = wall.replace(fold=0).astimezone(UTC)
    if early.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        # Shown once, or twice when the clocks go back: the first time counts.
        return min(early, late)
    before = early.astimezone(zone).utcoffset()
    low, high = 0, int((late - early).total_seconds())
    while high - low > 1:
        middle = (low + high) // 2
        if (early + timedelta(seconds=middle)).astimezone(zone).utcoffset() == before:
            low = middle
        else:
            high = middle
    return early + timedelta(seconds=high)
