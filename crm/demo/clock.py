"""The two years the demo covers, in the shops' time zone, and fast timestamp text."""

import calendar
from datetime import date, datetime, timedelta

from .catalogue import ZONE

DAYS = 730
# date.fromordinal(EPOCH_ORDINAL) is 1970-01-01.
EPOCH_ORDINAL = 719_163
WEEKDAY_WEIGHTS = (0.8, 0.85, 0.9, 1.0, 1.2, 1.5, 0.75)


def _on_sale(day: date) -> bool:
    """The winter and summer sales and Black Friday week."""
    return (
        day.month in (1, 7)
        or (day.month == 12 and day.day >= 27)
        or (day.month == 11 and day.day >= 22)
    )


class Clock:
    """The DAYS days before the local date of `until`; times are UTC epoch seconds.

    `text` writes them as the database reads them: UTC without an offset, which is
    how Django stores datetimes on SQLite and what a PostgreSQL connection in UTC,
    as Django opens them, reads.
    """

    def __init__(self, until: datetime):
        self.today = until.astimezone(ZONE).date()
        first = self.today - timedelta(days=DAYS)
        self.dates = [first + timedelta(days=day) for day in range(DAYS)]
        # Local midnight as UTC epoch, using the offset at noon so that shop hours
        # land right on the days the clocks change.
        self.midnights = [
            calendar.timegm(day.timetuple())
            - int(
                datetime(day.year, day.month, day.day, 12, tzinfo=ZONE)
                .utcoffset()
                .total_seconds()
            )
            for day in self.dates
        ]
        self.start = self.midnights[0]
        self.end = int(
            datetime(
                self.today.year, self.today.month, self.today.day, tzinfo=ZONE
            ).timestamp()
        )
        self._days: dict[int, str] = {}
        self._times = [
            f"{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}"
            for second in range(86_400)
        ]

    def text(self, epoch: int) -> str:
        day, second = divmod(epoch, 86_400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = (
                date.fromordinal(EPOCH_ORDINAL + day).isoformat() + " "
            )
        return prefix + self._times[second]

    def day_weights(self, *, seasonal: bool, gift_season: bool) -> list[float]:
        """How likely a purchase is on each day, relative to the mean day."""
        weights = []
        for day in self.dates:
            weight = WEEKDAY_WEIGHTS[day.weekday()]
            if seasonal:
                weight *= 4.0 if _on_sale(day) else 0.5
            elif gift_season and day.month == 12:
                weight *= 2.0
            weights.append(weight)
        mean = sum(weights) / len(weights)
        return [weight / mean for weight in weights]
