"""Recurrence rules: read in the shop's time zone, so a weekly 09:00 stays 09:00."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from campaigns.recurrence import next_occurrence, recurrence_parse, recurrence_validate

ZONES = ["Europe/Amsterdam", "America/New_York", "Australia/Sydney", "UTC"]

moments = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001
    max_value=datetime(2029, 12, 31),  # noqa: DTZ001
    timezones=st.just(UTC),
)


def wall_time_exists(wall: datetime, zone: ZoneInfo) -> bool:
    aware = wall.replace(tzinfo=zone)
    return aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall


def oracle_next(
    *, start: datetime, weekdays: set[int], after: datetime, zone: ZoneInfo
) -> datetime:
    """Plain Python: the first day on or after DTSTART's day whose weekday is in
    the rule, at DTSTART's wall time, placed in the zone, strictly after `after`."""
    day = max(start.date(), after.astimezone(zone).date() - timedelta(days=2))
    while True:
        if day.weekday() in weekdays:
            wall = datetime.combine(day, start.time())
            candidate = wall.replace(tzinfo=zone).astimezone(UTC)
            if wall >= start and candidate > after:
                return candidate
        day += timedelta(days=1)


@pytest.mark.parametrize("zone_name", ZONES)
@settings(max_examples=150, deadline=None)
@given(
    after=moments,
    hour=st.integers(0, 23),
    minute=st.sampled_from([0, 15, 30, 45]),
    weekdays=st.sets(st.integers(0, 6), min_size=1),
)
def test_next_occurrence_keeps_the_wall_time_across_dst(
    zone_name, after, hour, minute, weekdays
):
    zone = ZoneInfo(zone_name)
    start = datetime(2026, 1, 5, hour, minute)  # noqa: DTZ001
    byday = ",".join(["MO", "TU", "WE", "TH", "FR", "SA", "SU"][d] for d in weekdays)
    rule = f"DTSTART:{start:%Y%m%dT%H%M%S}\nRRULE:FREQ=WEEKLY;BYDAY={byday}"
    with override_settings(TIME_ZONE=zone_name):
        found = next_occurrence(rule, after)
    assert found is not None
    assert found > after
    assert found.tzinfo is not None
    assert found == oracle_next(start=start, weekdays=weekdays, after=after, zone=zone)
    local = found.astimezone(zone)
    if wall_time_exists(local.replace(tzinfo=None), zone) and wall_time_exists(
        datetime.combine(local.date(), start.time()), zone
    ):
        assert (local.hour, local.minute) == (hour, minute)


@settings(max_examples=100, deadline=None)
@given(after=moments)
def test_successive_occurrences_are_strictly_increasing_and_daily(after):
    rule = "DTSTART:20260101T093000\nRRULE:FREQ=DAILY"
    with override_settings(TIME_ZONE="Europe/Amsterdam"):
        first = next_occurrence(rule, after)
        second = next_occurrence(rule, first)
    assume(first is not None)
    assert after < first < second
    zone = ZoneInfo("Europe/Amsterdam")
    assert second.astimezone(zone).date() - first.astimezone(zone).date() == (
        timedelta(days=1)
    )
    assert second.astimezone(zone).time().isoformat() == "09:30:00"


@override_settings(TIME_ZONE="Europe/Amsterdam")
def test_every_monday_at_nine_is_nine_local_before_and_after_the_spring_change():
    rule = "DTSTART:20270104T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO"
    before = next_occurrence(rule, datetime(2027, 3, 20, tzinfo=UTC))
    after = next_occurrence(rule, before)
    # 2027-03-28 is the change: 09:00 is 08:00 UTC before it and 07:00 after.
    assert before == datetime(2027, 3, 22, 8, tzinfo=UTC)
    assert after == datetime(2027, 3, 29, 7, tzinfo=UTC)


@override_settings(TIME_ZONE="Europe/Amsterdam")
def test_a_rule_without_dtstart_takes_its_time_of_day_from_byhour():
    found = next_occurrence(
        "RRULE:FREQ=DAILY;BYHOUR=8;BYMINUTE=15", datetime(2027, 7, 1, 12, tzinfo=UTC)
    )
    assert found == datetime(2027, 7, 2, 6, 15, tzinfo=UTC)


def test_an_ended_rule_has_no_next_occurrence():
    rule = "DTSTART:20200101T090000\nRRULE:FREQ=DAILY;COUNT=3"
    assert next_occurrence(rule, datetime(2026, 1, 1, tzinfo=UTC)) is None
    with pytest.raises(ValidationError, match="no occurrence after now"):
        recurrence_validate(rule, after=datetime.now(UTC))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "needs a rule"),
        ("RRULE:FREQ=FORTNIGHTLY", "not an RFC 5545 rule"),
        ("DTSTART:20270104T090000Z\nRRULE:FREQ=DAILY", "shop's local time"),
        ("DTSTART;TZID=Europe/Paris:20270104T090000\nRRULE:FREQ=DAILY", "local time"),
        ("RRULE:FREQ=MINUTELY", "at most hourly"),
        ("RRULE:FREQ=DAILY;COUNT=4", "needs a DTSTART"),
        ("DTSTART:20270104T090000\nRRULE:FREQ=DAILY;BYDAY=XX", "not an RFC 5545"),
    ],
)
def test_invalid_rules_are_refused_saying_what_to_fix(text, says):
    with pytest.raises(ValidationError) as caught:
        recurrence_parse(text)
    assert "recurrence" in caught.value.message_dict
    assert says in caught.value.message_dict["recurrence"][0]


def test_next_occurrence_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="aware"):
        next_occurrence("RRULE:FREQ=DAILY", datetime(2027, 1, 1))  # noqa: DTZ001


def test_validate_accepts_a_rule_with_a_future_and_gives_its_next_occurrence():
    now = datetime.now(UTC)
    rule = f"DTSTART:{now:%Y%m%d}T090000\nRRULE:FREQ=WEEKLY"
    assert recurrence_validate(rule, after=now) == next_occurrence(rule, now)
