"""record_transition: the one way a step changes status — in the scheduler, in the store and in what expressions see.

A transition persists in one store transaction the step's status (with its times, failure reason, outputs and
properties), the end of its current attempt when it has one, the start of its next attempt when it starts one,
and the matching step events (the attempts' start and end, the step's new status), which watchers follow with a
cursor. When the step succeeded it also keeps its property document: the view of the step that later
expressions (``Steps.<name>...``) resolve against.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forgeline.engine.state import ExecutionState, now
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionStatus, StepEventDraft, StepEventKind, StepStatus
from forgeline.store.metadata.updates import AttemptClose, AttemptOpen, ExecutionUpdate, StepRunUpdate


@dataclass(frozen=True)
class AttemptEnd:
    """How a step's job attempt ended."""

    number: int
    status: StepStatus
    failure_kind: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class Transition:
    """A step's move to ``status``, with what is known of it then (None: leave as stored)."""

    step: str
    status: StepStatus
    started_at: datetime | None = None
    failure_reason: str | None = None
    outputs: Mapping[str, str] | None = None
    properties: Mapping[str, Any] | None = None
    metrics: Mapping[str, float] | None = None
    cache_source: str | None = None  # the execution whose cached result this step reused
    attempt: AttemptEnd | None = None
    starts: AttemptOpen | None = None  # the attempt this transition starts (its events come first)


def property_document(outputs: Mapping[str, str], metrics: Mapping[str, float],
                      properties: Mapping[str, Any]) -> dict[str, Any]:
    """What expressions see of a finished step: its outputs, metrics and properties."""
    return {"outputs": dict(outputs), "metrics": dict(metrics), **properties}


def record_transition(state: ExecutionState, transition: Transition) -> None:
    """Persist ``transition``: scheduler status, step record, attempt end and property document together.

    A step going back to Pending to retry keeps its stored status (Executing) while it backs off: only its
    attempt's end is stored.
    """
    name, status = transition.step, transition.status
    state.scheduler.mark(name, status)
    end = transition.attempt
    ended = None if end is None else AttemptClose(end.number, end.status, end.failure_kind, end.failure_reason)
    events = transition_events(state.id, transition)
    if transition.starts is not None:
        events = attempt_start_events(state.id, name, transition.starts) + events
    if status == StepStatus.PENDING:
        state.store.record_step_transition(state.id, name, ended=ended, started=transition.starts, events=events)
        return
    fields: dict[str, Any] = {"status": status}
    if status.is_terminal:
        fields["ended_at"] = now()
    if transition.started_at is not None:
        fields["started_at"] = transition.started_at
    if status == StepStatus.SUCCEEDED:
        fields["failure_reason"] = None
    elif transition.failure_reason is not None:
        fields["failure_reason"] = transition.failure_reason
    for key in ("outputs", "properties", "metrics"):
        value = getattr(transition, key)
        if value is not None:
            fields[key] = dict(value)
    if transition.cache_source is not None:
        fields.update(cache_hit=True, cache_source=transition.cache_source)
    state.store.record_step_transition(state.id, name, ended=ended, update=StepRunUpdate(**fields),
                                       started=transition.starts, events=events)
    if status == StepStatus.SUCCEEDED:
        state.resolution.step_properties[name] = property_document(
            transition.outputs or {}, transition.metrics or {}, transition.properties or {})


def transition_events(execution_id: str, transition: Transition) -> list[StepEventDraft]:
    """The events of ``transition``: its attempt's end (when it has one), then the step's new status."""
    events = []
    end = transition.attempt
    if end is not None:
        events.append(StepEventDraft(execution_id, StepEventKind.ATTEMPT, transition.step, end.number,
                                     end.status.value, _present(failure_kind=end.failure_kind,
                                                                failure_reason=end.failure_reason)))
    if transition.status != StepStatus.PENDING:
        events.append(StepEventDraft(execution_id, StepEventKind.STEP, transition.step, None, transition.status.value,
                                     _present(failure_reason=transition.failure_reason,
                                              cache_source=transition.cache_source)))
    return events


def attempt_start_events(execution_id: str, step_name: str, start: AttemptOpen) -> list[StepEventDraft]:
    """The events of a started attempt: it is Executing, and where its log goes."""
    return [
        StepEventDraft(execution_id, StepEventKind.ATTEMPT, step_name, start.attempt, StepStatus.EXECUTING.value),
        StepEventDraft(execution_id, StepEventKind.LOG, step_name, start.attempt, payload={"path": start.log_path}),
    ]


def _present(**values: str | None) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def execution_event(execution_id: str, status: ExecutionStatus, failure_reason: str | None = None) -> StepEventDraft:
    """The event of an execution's move to ``status``."""
    payload = {} if failure_reason is None else {"failure_reason": failure_reason}
    return StepEventDraft(execution_id, StepEventKind.EXECUTION, status=status.value, payload=payload)


def end_execution(store: MetadataStore, execution_id: str, status: ExecutionStatus, failure_reason: str | None) -> None:
    """Record an execution's final status and its event in one transaction: whoever sees one sees the other."""
    store.update_execution(execution_id, ExecutionUpdate(status=status, failure_reason=failure_reason,
                                                         ended_at=now()),
                           events=[execution_event(execution_id, status, failure_reason)])
