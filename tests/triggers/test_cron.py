"""CronTimes: due times of a cron expression in an IANA time zone, through daylight saving time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from forgeline.errors import ScheduleError
from forgeline.triggers.cron import CronTimes


def following(times: CronTimes, start: datetime, count: int) -> list[str]:
    out = []
    for _ in range(count):
        start = times.next_after(start)
        out.append(start.strftime("%m-%d %H:%M"))
    return out


def test_a_weekly_berlin_time_stays_at_six_local_across_both_changes() -> None:
    times = CronTimes("0 6 * * MON", "Europe/Berlin")
    assert following(times, datetime(2026, 3, 20, tzinfo=UTC), 2) == ["03-23 05:00", "03-30 04:00"]
    assert following(times, datetime(2026, 10, 20, tzinfo=UTC), 2) == ["10-26 05:00", "11-02 05:00"]


def test_a_fixed_hour_in_the_repeated_hour_fires_once_and_in_the_skipped_hour_once() -> None:
    daily = CronTimes("30 2 * * *", "Europe/Berlin")
    assert following(daily, datetime(2026, 10, 24, 12, tzinfo=UTC), 3) == ["10-25 00:30", "10-26 01:30",
                                                                           "10-27 01:30"]
    assert following(daily, datetime(2026, 3, 28, 12, tzinfo=UTC), 2) == ["03-29 01:00", "03-30 00:30"]
    assert daily.latest_at_or_before(datetime(2026, 10, 25, 1, 45, tzinfo=UTC)) == datetime(
        2026, 10, 25, 0, 30, tzinfo=UTC)


def test_every_half_hour_runs_through_the_repeated_hour() -> None:
    times = CronTimes("*/30 * * * *", "Europe/Berlin")
    assert following(times, datetime(2026, 10, 24, 23, 50, tzinfo=UTC), 4) == [
        "10-25 00:00", "10-25 00:30", "10-25 01:00", "10-25 01:30"]


def test_the_latest_due_time_includes_the_moment_itself() -> None:
    times = CronTimes("* * * * *", "UTC")
    assert times.latest_at_or_before(datetime(2026, 1, 1, 0, 5, tzinfo=UTC)) == datetime(2026, 1, 1, 0, 5,
                                                                                         tzinfo=UTC)
    assert times.latest_at_or_before(datetime(2026, 1, 1, 0, 5, 59, tzinfo=UTC)) == datetime(
        2026, 1, 1, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize(("expression", "zone", "message"), [
    ("61 * * * *", "UTC", "invalid cron expression '61 * * * *'"),
    ("* * * * * *", "UTC", "invalid cron expression '* * * * * *': expected five fields"),
    ("", "UTC", "invalid cron expression ''"),
    ("0 6 * * MON", "Berlin", "unknown time zone 'Berlin'"),
])
def test_bad_expressions_and_zones_are_refused_in_one_line(expression: str, zone: str, message: str) -> None:
    with pytest.raises(ScheduleError) as raised:
        CronTimes(expression, zone)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
