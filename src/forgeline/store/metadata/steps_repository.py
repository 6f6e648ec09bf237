"""Repository functions for step runs and their attempts, each run inside a caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, bindparam, func, insert, select, update

from forgeline.errors import StepNotFoundError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.executions_repository import load_execution
from forgeline.store.metadata.records import StepAttempt, StepRun, StepStatus
from forgeline.store.metadata.rows import enum_value, to_step_attempt, to_step_run
from forgeline.store.metadata.tables import step_attempts, step_runs

# Built once (every transition of every step runs them): building a statement costs more than running it.
_INSERT_ATTEMPT = insert(step_attempts)
_UPDATE_ATTEMPT = update(step_attempts).where(
    step_attempts.c.execution_id == bindparam("b_execution_id"),
    step_attempts.c.step_name == bindparam("b_step_name"),
    step_attempts.c.attempt == bindparam("b_attempt"),
)
_UPDATE_STEP_RUN = update(step_runs).where(
    step_runs.c.execution_id == bindparam("b_execution_id"), step_runs.c.name == bindparam("b_name"))


def append_step_runs(connection: Connection, execution_id: str, steps: list[tuple[str, str]]) -> None:
    """Append Pending step runs after the existing ones; names already present (or repeated) are skipped."""
    existing = connection.execute(
        select(step_runs.c.name, step_runs.c.position).where(step_runs.c.execution_id == execution_id)
    ).all()
    seen = {row.name for row in existing}
    position = max((row.position for row in existing), default=-1) + 1
    rows: list[dict[str, Any]] = []
    for name, kind in steps:
        if name in seen:
            continue
        seen.add(name)
        rows.append(
            {
                "execution_id": execution_id,
                "name": name,
                "kind": kind,
                "position": position + len(rows),
                "status": StepStatus.PENDING.value,
                "attempts": 0,
                "outputs": {},
                "properties": {},
                "cache_hit": False,
                "metrics": {},
            }
        )
    if rows:
        connection.execute(insert(step_runs), rows)


def load_step_run(connection: Connection, execution_id: str, name: str) -> StepRun:
    """One step run; ExecutionNotFoundError or StepNotFoundError (listing the real steps) otherwise."""
    row = connection.execute(
        select(step_runs).where(step_runs.c.execution_id == execution_id, step_runs.c.name == name)
    ).first()
    if row is not None:
        return to_step_run(row)
    load_execution(connection, execution_id)
    known = connection.execute(
        select(step_runs.c.name).where(step_runs.c.execution_id == execution_id).order_by(step_runs.c.position)
    ).scalars()
    raise StepNotFoundError(
        f"execution '{execution_id}' has no step '{name}' (its steps: {', '.join(known) or 'none'})"
    )


def list_step_runs(connection: Connection, execution_id: str) -> list[StepRun]:
    """The execution's step runs by position; ExecutionNotFoundError for an unknown execution."""
    rows = connection.execute(
        select(step_runs).where(step_runs.c.execution_id == execution_id).order_by(step_runs.c.position)
    ).all()
    if not rows:
        load_execution(connection, execution_id)
    return [to_step_run(row) for row in rows]


def update_step_run(connection: Connection, execution_id: str, name: str, values: dict[str, Any]) -> StepRun:
    """Write already-validated column values and return the step run as it now is."""
    write_step_run(connection, execution_id, name, values)
    return load_step_run(connection, execution_id, name)


def write_step_run(connection: Connection, execution_id: str, name: str, values: dict[str, Any]) -> None:
    """Write already-validated column values; StepNotFoundError when the execution has no such step."""
    if not values:
        return
    result = connection.execute(_UPDATE_STEP_RUN, {**values, "b_execution_id": execution_id, "b_name": name})
    if result.rowcount == 0:
        load_step_run(connection, execution_id, name)


def insert_attempt(connection: Connection, execution_id: str, step_name: str, attempt: int,
                   log_path: str | None) -> datetime:
    """Insert attempt ``attempt`` as Executing, started now (the caller counts it on the step run)."""
    now = utc_now()
    connection.execute(_INSERT_ATTEMPT, {
        "execution_id": execution_id, "step_name": step_name, "attempt": attempt,
        "status": StepStatus.EXECUTING.value, "started_at": now, "log_path": log_path})
    return now


def start_attempt(connection: Connection, execution_id: str, step_name: str, log_path: str | None) -> StepAttempt:
    """Insert attempt max+1 as Executing and record the count on the step run."""
    load_step_run(connection, execution_id, step_name)
    previous = connection.execute(
        select(func.max(step_attempts.c.attempt)).where(
            step_attempts.c.execution_id == execution_id, step_attempts.c.step_name == step_name
        )
    ).scalar()
    attempt = (previous or 0) + 1
    now = insert_attempt(connection, execution_id, step_name, attempt, log_path)
    connection.execute(
        update(step_runs)
        .where(step_runs.c.execution_id == execution_id, step_runs.c.name == step_name)
        .values(attempts=attempt)
    )
    return StepAttempt(
        execution_id=execution_id,
        step_name=step_name,
        attempt=attempt,
        status=StepStatus.EXECUTING,
        started_at=now,
        log_path=log_path,
    )


def finish_attempt(
    connection: Connection,
    execution_id: str,
    step_name: str,
    attempt: int,
    *,
    status: StepStatus,
    failure_kind: str | None,
    failure_reason: str | None,
) -> StepAttempt:
    """Set an attempt's final status, end time and failure; StepNotFoundError for an unknown attempt."""
    close_attempt(connection, execution_id, step_name, attempt, status=status, failure_kind=failure_kind,
                  failure_reason=failure_reason)
    where = _attempt_where(execution_id, step_name, attempt)
    return to_step_attempt(connection.execute(select(step_attempts).where(*where)).one())


def close_attempt(connection: Connection, execution_id: str, step_name: str, attempt: int, *,
                  status: StepStatus, failure_kind: str | None, failure_reason: str | None) -> None:
    """Like finish_attempt, without reading the attempt back."""
    _update_attempt(connection, execution_id, step_name, attempt, {
        "status": StepStatus(status).value,
        "ended_at": utc_now(),
        "failure_kind": enum_value(failure_kind),
        "failure_reason": failure_reason,
    })


def list_attempts(connection: Connection, execution_id: str, step_name: str | None) -> list[StepAttempt]:
    """Attempts of one step or of the whole execution, in the order they started."""
    query = (
        select(step_attempts)
        .where(step_attempts.c.execution_id == execution_id)
        .order_by(step_attempts.c.started_at, step_attempts.c.id)
    )
    if step_name is not None:
        query = query.where(step_attempts.c.step_name == step_name)
    rows = connection.execute(query).all()
    if not rows:
        if step_name is None:
            load_execution(connection, execution_id)
        else:
            load_step_run(connection, execution_id, step_name)
    return [to_step_attempt(row) for row in rows]


def _attempt_where(execution_id: str, step_name: str, attempt: int) -> tuple[ColumnElement[bool], ...]:
    return (
        step_attempts.c.execution_id == execution_id,
        step_attempts.c.step_name == step_name,
        step_attempts.c.attempt == attempt,
    )


def _update_attempt(
    connection: Connection, execution_id: str, step_name: str, attempt: int, values: dict[str, Any]
) -> None:
    # the statement is built once; the SET clause comes from the parameters' column names
    result = connection.execute(_UPDATE_ATTEMPT, {
        **values, "b_execution_id": execution_id, "b_step_name": step_name, "b_attempt": attempt})
    if result.rowcount == 0:
        load_step_run(connection, execution_id, step_name)
        raise StepNotFoundError(f"step '{step_name}' of execution '{execution_id}' has no attempt {attempt}")
