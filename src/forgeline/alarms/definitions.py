"""An alarm as a user writes it, checked whole before anything is stored."""

from __future__ import annotations

import re
from collections.abc import Sequence

from forgeline.alarms.conditions import parse_condition
from forgeline.alarms.targets import parse_target
from forgeline.errors import AlarmError
from forgeline.store.metadata.alarm_store import AlarmDraft, AlarmEventKind

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
EVENT_NAMES = ", ".join(kind.value for kind in AlarmEventKind)


def parse_event(text: str) -> AlarmEventKind:
    """An event name; AlarmError lists the ones there are."""
    try:
        return AlarmEventKind(text.strip())
    except ValueError:
        raise AlarmError(f"unknown event {text!r}; events: {EVENT_NAMES}") from None


def define_alarm(name: str, events: Sequence[str], targets: Sequence[str], *, pipeline: str | None = None,
                 group: str | None = None, when: str | None = None) -> AlarmDraft:
    """Check every part of an alarm and return what the store keeps; AlarmError names the first bad part."""
    if not _NAME.match(name):
        raise AlarmError(f"alarm name {name!r} must be letters, digits, '.', '_' or '-' (at most 128)")
    if not events:
        raise AlarmError(f"alarm {name!r} listens to nothing; add --on EVENT (events: {EVENT_NAMES})")
    kinds = list(dict.fromkeys(parse_event(event) for event in events))
    if not targets:
        raise AlarmError(f"alarm {name!r} sends nowhere; add --to webhook:URL, --to email:ADDRESS or "
                         "--to command:COMMAND")
    parsed = [parse_target(target) for target in dict.fromkeys(targets)]
    if when is not None:
        if AlarmEventKind.METRIC not in kinds:
            raise AlarmError(f"--when is a condition for --on metric; add --on metric to alarm {name!r}")
        parse_condition(when)
    elif AlarmEventKind.METRIC in kinds:
        raise AlarmError(f"alarm {name!r} listens to metric but has no condition; add e.g. "
                         "--when \"steps.Compare.properties.deviation.score_drop > 0.05\"")
    for label, value in (("--pipeline", pipeline), ("--group", group)):
        if value is not None and not value.strip():
            raise AlarmError(f"{label} is empty; leave it out to match every {label[2:]}")
    return AlarmDraft(name=name, events=[kind.value for kind in kinds], targets=[target.text for target in parsed],
                      pipeline_name=pipeline, group_name=group, condition=when)
