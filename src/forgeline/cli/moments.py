"""Moments and ages given on the command line: ISO 8601 dates and times, or ages such as ``90m``, ``2h``, ``3d``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from forgeline.errors import ForgelineError

AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_age(text: str, option: str) -> timedelta:
    """An age such as ``30s``, ``90m``, ``2h``, ``3d`` or ``1w``; ForgelineError naming ``option`` otherwise."""
    match = _AGE.match(text)
    if match is None:
        raise ForgelineError(f"{option} {text!r}: expected an age such as 30m, 2h, 3d or 1w "
                             "(s, m, h, d, w)")
    return timedelta(**{AGE_UNITS[match.group(2)]: float(match.group(1))})


def parse_since(text: str, option: str = "--since", now: datetime | None = None) -> datetime:
    """A moment: an ISO date or date-time (local time unless it names a zone), or an age before now."""
    now = now or datetime.now(UTC)
    if _AGE.match(text):
        return now - parse_age(text, option)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ForgelineError(f"{option} {text!r}: expected an ISO date such as 2026-03-01 or "
                             "2026-03-01T14:00, or an age such as 2h or 3d") from None
    return moment.astimezone() if moment.tzinfo is None else moment
