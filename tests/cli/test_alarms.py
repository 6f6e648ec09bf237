"""``forgeline alarms`` against the store: bad input is one line and stores nothing; the commands round-trip."""

from __future__ import annotations

import json

import pytest

from conftest import Cli


@pytest.mark.parametrize(("arguments", "message"), [
    (["--on", "execution.flailed", "--to", "command:true"], "error: unknown event 'execution.flailed'; events: "),
    (["--on", "step.failed", "--to", "webhook:hooks.example/x"],
     "error: target 'webhook:hooks.example/x': 'hooks.example/x' is not an http(s) URL"),
    (["--on", "step.failed", "--to", "email:ml-team@example.com,ops"],
     "error: target 'email:ml-team@example.com,ops': 'ops' is not an email address"),
    (["--on", "metric", "--when", "steps.Compare.properties.x => 1", "--to", "command:true"],
     "error: condition 'steps.Compare.properties.x => 1': unexpected '=' at position 27"),
    (["--on", "metric", "--to", "command:true"], "error: alarm 'bad' listens to metric but has no condition"),
])
def test_bad_input_is_one_line_and_stores_nothing(cli: Cli, arguments: list[str], message: str) -> None:
    assert cli("alarms", "create", "good", "--on", "step.failed", "--to", "command:true").returncode == 0
    refused = cli("alarms", "create", "bad", *arguments)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith(message) and len(refused.stderr.splitlines()) == 1, refused.stderr
    assert [alarm["name"] for alarm in json.loads(cli("alarms", "list", "--json").stdout)] == ["good"]


def test_create_describe_pause_delete(cli: Cli) -> None:
    made = cli("alarms", "create", "approvals", "--on", "model.approved", "--on", "model.rejected", "--group",
               "packaging-bag", "--to", "email:ml-team@example.com", "--to", "command:/usr/local/bin/page-me")
    assert made.stdout == ("alarm approvals created: on model.approved, model.rejected (group=packaging-bag) to "
                           "email:ml-team@example.com, command:/usr/local/bin/page-me\n")
    assert cli("alarms", "pause", "approvals").stdout == "alarm approvals paused\n"
    described = cli("alarms", "describe", "approvals").stdout
    assert described.startswith("alarm approvals (paused)\n  events:    model.approved, model.rejected\n")
    assert "  group:     packaging-bag\n" in described and "  to:        command:/usr/local/bin/page-me\n" in described
    assert cli("alarms", "resume", "approvals").stdout == "alarm approvals resumed\n"
    assert cli("alarms", "history").stdout == "no deliveries yet\n"
    assert cli("alarms", "delete", "approvals").stdout == "alarm approvals deleted\n"
    missing = cli("alarms", "describe", "approvals")
    assert missing.returncode == 1 and missing.stderr.strip() == (
        "error: no alarm 'approvals' (none yet: create one with `forgeline alarms create`)")
