"""Clocks a schedule runner can take: the system's, or a file a test writes the current time into."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

Clock = Callable[[], datetime]
"""The current time, timezone-aware."""


def system_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def file_clock(path: Path) -> Clock:
    """A clock reading an ISO 8601 time from ``path`` at each call; the system's while the file is absent or empty."""

    def now() -> datetime:
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            text = ""
        if not text:
            return system_clock()
        moment = datetime.fromisoformat(text)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    return now
