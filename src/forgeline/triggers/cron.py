"""CronTimes: the due times of a cron expression in a time zone (croniter for the expression, zoneinfo for DST)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from forgeline.errors import ScheduleError


@dataclass(frozen=True)
class CronTimes:
    """A checked cron expression (five fields, names like MON allowed) read in an IANA time zone."""

    expression: str
    timezone: str

    def __post_init__(self) -> None:
        """Refuse an expression croniter cannot read or a zone zoneinfo does not know, in one line each."""
        if not self.expression.strip() or not croniter.is_valid(self.expression):
            raise ScheduleError(f"invalid cron expression {self.expression!r}: expected five fields "
                                "'minute hour day-of-month month day-of-week', e.g. \"0 6 * * MON\"")
        if len(self.expression.split()) != 5 and not self.expression.startswith("@"):
            raise ScheduleError(f"invalid cron expression {self.expression!r}: expected five fields "
                                "'minute hour day-of-month month day-of-week' (no seconds field)")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError(f"unknown time zone {self.timezone!r}: give an IANA name such as Europe/Berlin "
                                "or UTC") from None

    def next_after(self, moment: datetime) -> datetime:
        """The first due time strictly after ``moment``, in UTC.

        When clocks go back, a wall-clock time in the repeated hour happens twice: a schedule with a fixed hour
        (``30 2 * * *``) fires at the first only; one that names every hour fires at both, an hour apart.
        """
        times = croniter(self.expression, moment.astimezone(ZoneInfo(self.timezone)))
        while True:
            due = self._kept(times.get_next(datetime))
            if due is not None:
                return due

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last due time at or before ``moment``, in UTC."""
        times = croniter(self.expression, moment.astimezone(ZoneInfo(self.timezone)))
        while True:
            due = self._kept(times.get_prev(datetime))
            if due is not None:
                break
        following = self.next_after(due)
        return following if following <= moment else due  # get_prev is strict: ``moment`` may itself be due

    def _kept(self, due: datetime) -> datetime | None:
        utc = due.astimezone(UTC)
        every_hour = not self.expression.startswith("@") and self.expression.split()[1] == "*"
        return utc if every_hour or utc.astimezone(ZoneInfo(self.timezone)).fold == 0 else None
