"""Which alarms an event rings: its kind, the alarm's pipeline and group filters, and a metric condition."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from forgeline.alarms.conditions import Condition, parse_condition
from forgeline.errors import AlarmError
from forgeline.store.metadata.alarm_store import AlarmEventKind, AlarmEventRecord, AlarmRecord


def alarm_matches(alarm: AlarmRecord, event: AlarmEventRecord) -> bool:
    """True when an unpaused alarm listens to the event's kind, its filters agree, and its condition holds."""
    if alarm.paused or event.kind not in alarm.events or occurred_at(event) < alarm.created_at:
        return False
    payload = event.payload
    # trigger.rejected events, written by the trigger watcher, name the pipeline as pipeline_name
    if alarm.pipeline_name is not None and (payload.get("pipeline") or payload.get("pipeline_name")) != \
            alarm.pipeline_name:
        return False
    if alarm.group_name is not None and payload.get("group") != alarm.group_name:
        return False
    if event.kind == AlarmEventKind.METRIC.value:
        condition = alarm_condition(alarm)
        if condition is None or not condition.matches_step(str(payload.get("step", ""))):
            return False
        return condition.holds(payload.get("document") or {})
    return True


def deliveries_for(alarms: Sequence[AlarmRecord], event: AlarmEventRecord) -> list[tuple[str, str]]:
    """(alarm, target) for every target of every alarm the event rings."""
    return [(alarm.name, target) for alarm in alarms if alarm_matches(alarm, event) for target in alarm.targets]


def metric_conditions(alarms: Sequence[AlarmRecord]) -> list[Condition]:
    """The conditions of the unpaused metric alarms: the steps whose success is worth a look."""
    found = []
    for alarm in alarms:
        if not alarm.paused and AlarmEventKind.METRIC.value in alarm.events:
            condition = alarm_condition(alarm)
            if condition is not None:
                found.append(condition)
    return found


def alarm_condition(alarm: AlarmRecord) -> Condition | None:
    """The alarm's parsed condition; None without one (or for one stored by hand that no longer parses)."""
    if alarm.condition is None:
        return None
    try:
        return parse_condition(alarm.condition)
    except AlarmError:
        return None


def occurred_at(event: AlarmEventRecord) -> datetime:
    """When what the event tells happened (its source row's time), or when it entered the outbox."""
    text = event.payload.get("occurred_at")
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else event.created_at
    except ValueError:
        return event.created_at
