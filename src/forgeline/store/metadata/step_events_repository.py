"""The append-only step event log: execution, step and attempt transitions and log and metric pointers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select

from forgeline.errors import ExecutionNotFoundError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.records import StepEvent, StepEventDraft, StepEventKind
from forgeline.store.metadata.rows import to_step_event
from forgeline.store.metadata.tables import executions, step_events


def append_events(connection: Connection, drafts: Sequence[StepEventDraft]) -> list[StepEvent]:
    """Insert the events in order and return them with their cursors; ExecutionNotFoundError for a missing one.

    Each execution's row is locked first (FOR UPDATE on PostgreSQL; SQLite serialises writers anyway), so the
    events of one execution commit in id order and a reader that resumes after a cursor never skips one.
    """
    for execution_id in sorted({draft.execution_id for draft in drafts}):
        lock_execution(connection, execution_id)
    now = utc_now()
    appended = []
    for draft in drafts:
        values = _event_values(draft, now)
        event_id = connection.execute(insert(step_events).values(**values).returning(step_events.c.id)).scalar_one()
        appended.append(StepEvent(id=event_id, kind=StepEventKind(draft.kind), **{
            key: value for key, value in values.items() if key != "kind"}))
    return appended


def lock_execution(connection: Connection, execution_id: str) -> None:
    """Lock the execution's row (FOR UPDATE on PostgreSQL); ExecutionNotFoundError when there is none."""
    found = connection.execute(
        select(executions.c.id).where(executions.c.id == execution_id).with_for_update()
    ).first()
    if found is None:
        raise ExecutionNotFoundError(f"no execution '{execution_id}'")


def insert_events(connection: Connection, drafts: Sequence[StepEventDraft]) -> None:
    """Insert the events in order in one statement; the caller has locked their execution's row already."""
    if drafts:
        now = utc_now()
        # parameters apart from the statement: its compiled form is cached, however many events there are
        connection.execute(insert(step_events), [_event_values(draft, now) for draft in drafts])


def _event_values(draft: StepEventDraft, now: datetime) -> dict[str, Any]:
    return {
        "execution_id": draft.execution_id,
        "step_name": draft.step_name,
        "attempt": draft.attempt,
        "kind": StepEventKind(draft.kind).value,
        "status": None if draft.status is None else str(draft.status),
        # exactly what the JSON column hands back later, so the returned event equals the one read back
        "payload": json.loads(json.dumps(draft.payload)),
        "created_at": now,
    }


def list_events(connection: Connection, execution_id: str, after: int | None, limit: int | None) -> list[StepEvent]:
    """The execution's events with an id above ``after``, oldest first, at most ``limit``."""
    query = select(step_events).where(step_events.c.execution_id == execution_id).order_by(step_events.c.id)
    if after is not None:
        query = query.where(step_events.c.id > after)
    if limit is not None:
        query = query.limit(limit)
    rows = connection.execute(query).all()
    if not rows and connection.execute(select(executions.c.id).where(executions.c.id == execution_id)).first() is None:
        raise ExecutionNotFoundError(f"no execution '{execution_id}'")
    return [to_step_event(row) for row in rows]
