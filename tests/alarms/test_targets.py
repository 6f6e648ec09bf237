"""Targets: webhook URLs, email addresses and commands, checked when an alarm is written."""

from __future__ import annotations

import pytest

from forgeline.alarms.targets import TargetKind, parse_target
from forgeline.errors import AlarmError


def test_each_kind_of_target_is_parsed() -> None:
    webhook = parse_target("webhook:https://hooks.example/x?y=1")
    assert (webhook.kind, webhook.url) == (TargetKind.WEBHOOK, "https://hooks.example/x?y=1")
    email = parse_target("email:ml-team@example.com, oncall@example.org")
    assert email.addresses == ("ml-team@example.com", "oncall@example.org")
    command = parse_target("command:/usr/local/bin/page-me --team 'ml ops'")
    assert command.argv == ("/usr/local/bin/page-me", "--team", "ml ops")
    assert command.text == "command:/usr/local/bin/page-me --team 'ml ops'"


@pytest.mark.parametrize(("text", "message"), [
    ("hooks.example/x", "is not one of webhook:URL"),
    ("slack:#ml", "is not one of webhook:URL"),
    ("webhook:hooks.example/x", "is not an http(s) URL"),
    ("webhook:ftp://hooks.example/x", "is not an http(s) URL"),
    ("webhook:http://host:port/x", "port of 'http://host:port/x' is not a number"),
    ("email:ml-team", "'ml-team' is not an email address"),
    ("email:a@example.com,", "'' is not an email address"),
    ("email:a b@example.com", "'a b@example.com' is not an email address"),
    ("command:", "names no command"),
    ("command:'unclosed", "cannot be split into words"),
])
def test_a_bad_target_is_refused_in_one_line(text: str, message: str) -> None:
    with pytest.raises(AlarmError) as caught:
        parse_target(text)
    assert message in str(caught.value) and "\n" not in str(caught.value)
