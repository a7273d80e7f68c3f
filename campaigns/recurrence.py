"""Recurring campaigns: an RFC 5545 rule, read in the shop's time zone.

The rule is text such as::

    DTSTART:20270104T090000
    RRULE:FREQ=WEEKLY;BYDAY=MO

python-dateutil evaluates it on naive wall-clock times, and each occurrence is
then placed in `settings.TIME_ZONE`. Evaluating on wall time is what keeps
"every Monday 09:00" at 09:00 in the shop on both sides of a DST change; an
evaluation in UTC would move it by an hour twice a year.

Without a DTSTART line the series is anchored at midnight of 2000-01-01 (shop's
time), so the times of day come from BYHOUR/BYMINUTE and the answer never
depends on when the rule was read.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rruleset, rrulestr
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# The fixed anchor of rules without DTSTART (see the module docstring).
ANCHOR = datetime(2000, 1, 1)  # noqa: DTZ001 - a wall-clock time, placed later
# Beat plans runs once a minute and a campaign is a marketing message: a rule
# firing more often than hourly is a typo, not a plan.
REFUSED_FREQUENCIES = {"SECONDLY", "MINUTELY"}
# Wall time and UTC order can disagree by the DST shift (at most a few hours
# anywhere), so the search starts that far before `after`.
DST_SLACK = timedelta(hours=3)
# Occurrences inspected per call before giving up: enough for any real rule,
# bounded for a pathological one (BYSETPOS over a huge set).
MAX_STEPS = 1000

EXAMPLE = "DTSTART:20270104T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO"


def shop_zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def _error(message: str, code: str, **params) -> ValidationError:
    return ValidationError(
        {"recurrence": ValidationError(message, code=code, params=params)}
    )


def _dtstarts(rule: rrule | rruleset) -> list[datetime]:
    if isinstance(rule, rruleset):
        return [r._dtstart for r in rule._rrule] + list(rule._rdate)
    return [rule._dtstart]


def recurrence_parse(text: str) -> rrule | rruleset:
    """The dateutil rule of `text`, on naive shop wall times.

    Raises ValidationError (field "recurrence") saying what to fix.
    """
    text = (text or "").strip()
    if not text:
        raise _error(
            _("A recurring campaign needs a rule, for example %(example)s."),
            "required",
            example=EXAMPLE.replace("\n", " "),
        )
    upper = text.upper()
    if "TZID=" in upper or any(
        line.strip().upper().startswith("DTSTART")
        and line.strip().upper().endswith("Z")
        for line in text.splitlines()
    ):
        raise _error(
            _(
                "Write DTSTART as the shop's local time without a time zone, for "
                "example DTSTART:20270104T090000: the rule is read in %(zone)s."
            ),
            "recurrence_zone",
            zone=settings.TIME_ZONE,
        )
    has_dtstart = "DTSTART" in upper
    if not has_dtstart and "COUNT=" in upper:
        raise _error(
            _("A rule with COUNT needs a DTSTART line saying when the count starts."),
            "recurrence_count_without_start",
        )
    for frequency in REFUSED_FREQUENCIES:
        if f"FREQ={frequency}" in upper.replace(" ", ""):
            raise _error(
                _("Campaigns recur at most hourly; use FREQ=HOURLY, DAILY or WEEKLY."),
                "recurrence_too_frequent",
            )
    try:
        rule = rrulestr(text, dtstart=None if has_dtstart else ANCHOR, cache=False)
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise _error(
            _(
                "This is not an RFC 5545 rule (%(problem)s). Write it as, for "
                "example, %(example)s."
            ),
            "recurrence_invalid",
            problem=str(exc) or type(exc).__name__,
            example=EXAMPLE.replace("\n", " "),
        ) from None
    if any(start.tzinfo is not None for start in _dtstarts(rule)):
        raise _error(
            _("Write times as the shop's local time, without a time zone."),
            "recurrence_zone",
        )
    return rule


def recurrence_validate(text: str, *, after: datetime) -> datetime:
    """The rule's first occurrence after `after`; refuse a rule that does not
    parse or never occurs again."""
    occurrence = next_occurrence(text, after)
    if occurrence is None:
        raise _error(
            _(
                "The rule has no occurrence after now; move DTSTART or UNTIL, or "
                "raise COUNT."
            ),
            "recurrence_ended",
        )
    return occurrence


def _aware(wall: datetime, zone: ZoneInfo) -> datetime:
    # A wall time that does not exist (inside the spring gap) comes out an hour
    # later in UTC terms, which is the first moment that wall time is reached; an
    # ambiguous one (the autumn overlap) is its first occurrence (fold 0).
    return wall.replace(tzinfo=zone).astimezone(UTC)


def next_occurrence(rule: str, after: datetime) -> datetime | None:
    """The first occurrence of `rule` strictly after `after`, in UTC.

    `after` must be aware. None when the rule has ended.
    """
    if after.tzinfo is None:
        raise ValueError("next_occurrence() needs an aware datetime")
    parsed = recurrence_parse(rule)
    zone = shop_zone()
    start = after.astimezone(zone).replace(tzinfo=None) - DST_SLACK
    for step, wall in enumerate(parsed.xafter(start, inc=True)):
        if step >= MAX_STEPS:
            return None
        occurrence = _aware(wall, zone)
        if occurrence > after:
            return occurrence
    return None
