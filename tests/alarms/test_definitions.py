"""An alarm's definition is checked whole before anything is stored."""

from __future__ import annotations

import pytest

from forgeline.alarms.definitions import define_alarm, parse_event
from forgeline.errors import AlarmError
from forgeline.store.metadata.alarm_store import AlarmEventKind


def test_every_event_of_the_issue_is_a_kind() -> None:
    names = ["execution.started", "execution.succeeded", "execution.failed", "execution.stopped", "step.failed",
             "model.registered", "model.approved", "model.rejected", "trigger.rejected", "metric"]
    assert [parse_event(name) for name in names] == list(AlarmEventKind)


def test_a_definition_keeps_events_once_and_in_order() -> None:
    draft = define_alarm("approvals", ["model.approved", "model.rejected", "model.approved"],
                         ["email:a@example.com"], group="packaging-bag")
    assert (draft.events, draft.group_name, draft.condition) == (["model.approved", "model.rejected"],
                                                                 "packaging-bag", None)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"events": ["execution.flailed"]}, "unknown event 'execution.flailed'; events: execution.started"),
    ({"events": []}, "listens to nothing"),
    ({"targets": []}, "sends nowhere"),
    ({"targets": ["webhook:nope"]}, "is not an http(s) URL"),
    ({"events": ["metric"]}, "listens to metric but has no condition"),
    ({"when": "steps.A.properties.x > 1"}, "--when is a condition for --on metric"),
    ({"events": ["metric"], "when": "steps.A.properties.x >"}, "ends too early"),
    ({"name": "no spaces please"}, "alarm name 'no spaces please'"),
    ({"pipeline": " "}, "--pipeline is empty"),
])
def test_a_bad_part_is_named(kwargs: dict, message: str) -> None:
    arguments = {"name": "a", "events": ["step.failed"], "targets": ["command:true"], **kwargs}
    name, events, targets = arguments.pop("name"), arguments.pop("events"), arguments.pop("targets")
    with pytest.raises(AlarmError, match=message.replace("(", r"\(").replace(")", r"\)")):
        define_alarm(name, events, targets, **arguments)
