"""Where an alarm sends its events: ``webhook:URL``, ``email:ADDR[,ADDR]`` or ``command:...``, checked when written."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from forgeline.errors import AlarmError

_ADDRESS = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_EXAMPLES = "webhook:https://hooks.example/x, email:ml-team@example.com or command:/usr/local/bin/page-me"


class TargetKind(StrEnum):
    """How a target is reached."""

    WEBHOOK = "webhook"
    EMAIL = "email"
    COMMAND = "command"


@dataclass(frozen=True)
class Target:
    """A parsed target: its kind and its address (a URL, a list of mail addresses, or a command's words)."""

    kind: TargetKind
    text: str  # as the user wrote it, which is what the store keeps
    url: str = ""
    addresses: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()


def parse_target(text: str) -> Target:
    """Parse and check a target; AlarmError says what is wrong with it."""
    kind_text, sep, rest = text.partition(":")
    if not sep or kind_text not in {kind.value for kind in TargetKind}:
        raise AlarmError(f"target {text!r} is not one of webhook:URL, email:ADDRESS[,ADDRESS], command:COMMAND; "
                         f"write e.g. {_EXAMPLES}")
    kind = TargetKind(kind_text)
    if kind is TargetKind.WEBHOOK:
        return Target(kind, text, url=_check_url(text, rest))
    if kind is TargetKind.EMAIL:
        return Target(kind, text, addresses=_check_addresses(text, rest))
    try:
        argv = tuple(shlex.split(rest))
    except ValueError as error:
        raise AlarmError(f"target {text!r}: the command cannot be split into words ({error})") from None
    if not argv:
        raise AlarmError(f"target {text!r} names no command; write e.g. command:/usr/local/bin/page-me")
    return Target(kind, text, argv=argv)


def _check_url(text: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AlarmError(f"target {text!r}: {url!r} is not an http(s) URL; write e.g. webhook:https://hooks.example/x")
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        raise AlarmError(f"target {text!r}: the port of {url!r} is not a number") from None
    return url


def _check_addresses(text: str, addresses: str) -> tuple[str, ...]:
    found = tuple(address.strip() for address in addresses.split(","))
    for address in found:
        if not _ADDRESS.match(address):
            raise AlarmError(f"target {text!r}: {address!r} is not an email address; "
                             "write e.g. email:ml-team@example.com,oncall@example.com")
    return found
