"""What an alarm says: one readable text with the figures that matter, and the event's fields for programs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from forgeline.alarms.conditions import read_path
from forgeline.alarms.matching import alarm_condition
from forgeline.store.metadata.alarm_store import AlarmEventKind, AlarmEventRecord, AlarmRecord

_MAX_FIGURES = 12


@dataclass(frozen=True)
class AlarmMessage:
    """A rendered alarm: a one-line subject, the full text, and the JSON body webhooks and commands receive."""

    subject: str
    text: str
    body: dict[str, Any]


def render_message(alarm_name: str, alarm: AlarmRecord | None, event: AlarmEventRecord) -> AlarmMessage:
    """The message for one event rung by one alarm (``alarm`` None once it was deleted)."""
    payload = event.payload
    headline, details = _describe(alarm, event)
    execution_id = payload.get("execution_id")
    if execution_id:
        details.append(f"execution {execution_id}: `forgeline executions describe {execution_id}`")
    text = "\n".join([f"[forgeline] {headline}", *details])
    fields = {key: value for key, value in payload.items() if key != "document"}
    body = {"text": text, "alarm": alarm_name, "event": event.kind, "event_id": event.id, "subject": event.subject,
            "at": event.created_at.isoformat(), **fields}
    return AlarmMessage(subject=f"[forgeline] {headline}"[:200], text=text, body=body)


def _describe(alarm: AlarmRecord | None, event: AlarmEventRecord) -> tuple[str, list[str]]:
    payload = event.payload
    pipeline = payload.get("pipeline") or "?"
    execution = payload.get("execution_id")
    kind = event.kind
    if kind == AlarmEventKind.STEP_FAILED.value:
        return (f"step {payload.get('step')} of {pipeline} failed (execution {execution})",
                [f"reason: {payload.get('failure_reason') or 'not recorded'}"])
    if kind.startswith("execution."):
        verb = kind.split(".", 1)[1]
        details = []
        if payload.get("failure_reason"):
            details.append(f"reason: {payload['failure_reason']}")
        return f"execution {execution} of {pipeline} {verb}", details
    if kind.startswith("model."):
        return _describe_model(event)
    if kind == AlarmEventKind.TRIGGER_REJECTED.value:
        where = payload.get("uri") or payload.get("key") or event.subject
        return (f"trigger {payload.get('trigger', event.subject)} rejected {where}",
                [f"reason: {payload.get('reason') or 'not recorded'}"])
    if kind == AlarmEventKind.METRIC.value:
        return _describe_metric(alarm, event)
    return f"{kind} {event.subject or ''}".strip(), []


def _describe_model(event: AlarmEventRecord) -> tuple[str, list[str]]:
    payload = event.payload
    package, status = payload.get("package", event.subject), payload.get("status")
    if event.kind == AlarmEventKind.MODEL_REGISTERED.value:
        headline = f"model {package} registered as {status}"
    else:
        word = "approved" if event.kind == AlarmEventKind.MODEL_APPROVED.value else "rejected"
        headline = f"model {package} {word} by {payload.get('actor')}"
    details = []
    for label in ("description", "note"):
        if payload.get(label):
            details.append(f"{label}: {payload[label]}")
    previous = payload.get("compared_with")
    figures = payload.get("figures") or []
    if figures:
        details.append(f"figures (against {previous}):" if previous else "figures (no approved model before it):")
        for figure in figures[:_MAX_FIGURES]:
            details.append("  " + _figure_line(figure))
        if len(figures) > _MAX_FIGURES:
            details.append(f"  ... and {len(figures) - _MAX_FIGURES} more in the event's figures")
    return headline, details


def _figure_line(figure: dict[str, Any]) -> str:
    value, previous, change = figure.get("value"), figure.get("previous"), figure.get("change")
    if previous is None:
        return f"{figure.get('name')}: {_number(value)}"
    return f"{figure.get('name')}: {_number(previous)} -> {_number(value)} ({_number(change, signed=True)})"


def _describe_metric(alarm: AlarmRecord | None, event: AlarmEventRecord) -> tuple[str, list[str]]:
    payload = event.payload
    condition = None if alarm is None else alarm_condition(alarm)
    step, pipeline = payload.get("step"), payload.get("pipeline") or "?"
    if condition is None:
        return f"a condition on step {step} of {pipeline} was met", []
    details = []
    for comparison in condition.comparisons():
        found, value = read_path(payload.get("document") or {}, comparison.section, comparison.keys)
        shown = _number(value) if found else "missing"
        details.append(f"  {comparison.path} = {shown} (condition: {comparison.operator} {comparison.literal!r})")
    return f"condition met on step {step} of {pipeline}: {condition.text}", details


def _number(value: Any, *, signed: bool = False) -> str:
    if isinstance(value, float):
        return f"{value:+.4g}" if signed else f"{value:.4g}"
    return str(value)
