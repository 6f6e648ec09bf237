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
        """The first due time strictly after ``moment``, in UTC."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        due: datetime = croniter(self.expression, local).get_next(datetime)
        return due.astimezone(UTC)

    def latest_at_or_before(self, moment: datetime) -> datetime:
        """The last due time at or before ``moment``, in UTC."""
        local = moment.astimezone(ZoneInfo(self.timezone))
        due: datetime = croniter(self.expression, local).get_prev(datetime)
        if self.next_after(due) <= moment:  # get_prev is strict: ``moment`` may itself be due
            return self.next_after(due)
        return due.astimezone(UTC)
