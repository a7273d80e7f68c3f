"""Quiet hours across time zones and daylight-saving changes, against an oracle
that walks the clock minute by minute."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from campaigns.quiet_hours import parse_quiet_hours, quiet_hours_end

# The default quiet hours (21:00-08:00), which the other campaign tests turn off.
pytestmark = pytest.mark.quiet_hours

ZONES = [
    "Europe/Amsterdam",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "UTC",
]
# Days around the spring and autumn changes of both hemispheres (naive bounds are
# what hypothesis takes; the moments are read as UTC).
SPRING = (datetime(2027, 3, 20, tzinfo=UTC), datetime(2027, 4, 10, tzinfo=UTC))
AUTUMN = (datetime(2027, 10, 1, tzinfo=UTC), datetime(2027, 11, 10, tzinfo=UTC))
moments = st.datetimes(
    min_value=SPRING[0].replace(tzinfo=None), max_value=SPRING[1].replace(tzinfo=None)
) | st.datetimes(
    min_value=AUTUMN[0].replace(tzinfo=None), max_value=AUTUMN[1].replace(tzinfo=None)
)
hours = st.tuples(
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
)


def quiet(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def oracle(moment: datetime, zone: ZoneInfo, start: time, end: time) -> datetime:
    """Step forward a minute at a time until the local clock is out of the quiet
    period (at most two days)."""
    step = moment
    for _ in range(2 * 24 * 60 + 1):
        if not quiet(step.astimezone(zone).time(), start, end):
            return step
        # Round up to the next whole minute, then walk in minutes.
        step = (step + timedelta(minutes=1)).replace(second=0, microsecond=0)
    raise AssertionError("the quiet period never ended")


@settings(max_examples=400, deadline=None)
@given(moment=moments, zone=st.sampled_from(ZONES), window=hours)
# The end in a spring-forward gap: the clocks jump past it (03:00 local wakes).
@example(
    moment=datetime(2027, 3, 27, 23, 0, tzinfo=UTC),
    zone="Europe/Amsterdam",
    window=(time(21, 0), time(2, 1)),
)
# ... and straight back into the quiet hours: the period ends the next day.
@example(
    moment=datetime(2027, 3, 27, 23, 0, tzinfo=UTC),
    zone="Europe/Amsterdam",
    window=(time(2, 1), time(2, 0)),
)
def test_quiet_hours_end_agrees_with_walking_the_clock(moment, zone, window):
    start, end = window
    moment = moment.replace(tzinfo=UTC)
    tz = ZoneInfo(zone)

    wake = quiet_hours_end(moment, tz, (start, end))

    assert wake >= moment
    assert not quiet(wake.astimezone(tz).time(), start, end)
    assert wake == oracle(moment, tz, start, end)


@given(moment=moments, zone=st.sampled_from(ZONES))
def test_outside_the_quiet_hours_the_message_goes_at_once(moment, zone):
    moment = moment.replace(tzinfo=UTC)
    tz = ZoneInfo(zone)
    start, end = parse_quiet_hours(("21:00", "08:00"))
    local = moment.astimezone(tz).time()
    if not quiet(local, start, end):
        assert quiet_hours_end(moment, tz) == moment


def test_the_morning_after_spring_forward_is_eight_local():
    # Europe moves its clocks from 02:00 to 03:00 on 28 March 2027.
    night = datetime(2027, 3, 27, 23, 30, tzinfo=UTC)  # 00:30 local, CET
    wake = quiet_hours_end(night, ZoneInfo("Europe/Amsterdam"))
    assert wake.astimezone(ZoneInfo("Europe/Amsterdam")).time() == time(8, 0)
    assert wake == datetime(2027, 3, 28, 6, 0, tzinfo=UTC)  # CEST, UTC+2
