"""Repository functions for executions, each run inside a caller's transaction."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from forgeline.errors import ExecutionFinishedError, ExecutionNotFoundError, PipelineNotFoundError, StoreError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.execution_record import to_execution
from forgeline.store.metadata.records import ExecutionRecord, ExecutionStatus
from forgeline.store.metadata.tables import executions, pipeline_versions

MIN_PREFIX_LENGTH = 4
_SHOWN_MATCHES = 5


def insert_execution(
    connection: Connection,
    *,
    execution_id: str,
    pipeline_name: str,
    pipeline_version: int,
    parameters: dict[str, Any],
    work_dir: str,
    parent_execution_id: str | None,
    status: ExecutionStatus = ExecutionStatus.EXECUTING,
    code_snapshot: str | None = None,
    started_by: dict[str, Any] | None = None,
) -> None:
    """Insert an Executing (started now) or Queued execution of a stored pipeline version."""
    if status not in (ExecutionStatus.EXECUTING, ExecutionStatus.QUEUED):
        raise ValueError(f"a new execution is Executing or Queued, not {ExecutionStatus(status).value}")
    found = connection.execute(
        select(pipeline_versions.c.id).where(
            pipeline_versions.c.pipeline_name == pipeline_name,
            pipeline_versions.c.version == pipeline_version,
        )
    ).first()
    if found is None:
        raise PipelineNotFoundError(
            f"no pipeline '{pipeline_name}' version {pipeline_version}; save it with save_pipeline_version first"
        )
    require_parent(connection, parent_execution_id)
    now = utc_now()
    try:
        connection.execute(
            insert(executions).values(
                id=execution_id,
                pipeline_name=pipeline_name,
                pipeline_version=pipeline_version,
                status=ExecutionStatus(status).value,
                parameters=parameters,
                work_dir=work_dir,
                created_at=now,
                started_at=now if status == ExecutionStatus.EXECUTING else None,
                parent_execution_id=parent_execution_id,
                code_snapshot=code_snapshot,
                started_by=started_by,
            )
        )
    except IntegrityError as error:
        raise StoreError(f"execution '{execution_id}' already exists; use a new id") from error


def load_execution(connection: Connection, execution_id: str) -> ExecutionRecord:
    """The execution with exactly this id; ExecutionNotFoundError otherwise."""
    row = connection.execute(select(executions).where(executions.c.id == execution_id)).first()
    if row is None:
        raise ExecutionNotFoundError(f"no execution '{execution_id}'")
    return to_execution(row)


def resolve_execution(connection: Connection, id_or_prefix: str) -> ExecutionRecord:
    """The execution with this id, else the only one whose id starts with it (4+ characters)."""
    row = connection.execute(select(executions).where(executions.c.id == id_or_prefix)).first()
    if row is not None:
        return to_execution(row)
    if len(id_or_prefix) < MIN_PREFIX_LENGTH:
        raise ExecutionNotFoundError(
            f"no execution '{id_or_prefix}' (a prefix needs at least {MIN_PREFIX_LENGTH} characters)"
        )
    # substr, not LIKE: LIKE is case-insensitive on SQLite and treats '_' and '%' as wildcards.
    matches = connection.execute(
        select(executions)
        .where(func.substr(executions.c.id, 1, len(id_or_prefix)) == id_or_prefix)
        .order_by(executions.c.id)
    ).all()
    if len(matches) == 1:
        return to_execution(matches[0])
    if not matches:
        raise ExecutionNotFoundError(f"no execution '{id_or_prefix}'")
    shown = ", ".join(match.id for match in matches[:_SHOWN_MATCHES])
    more = ", ..." if len(matches) > _SHOWN_MATCHES else ""
    raise ExecutionNotFoundError(
        f"ambiguous prefix '{id_or_prefix}' matches {len(matches)} executions ({shown}{more}); give more characters"
    )


def list_executions(connection: Connection, pipeline_name: str | None, limit: int,
                    statuses: Collection[ExecutionStatus] | None = None,
                    since: datetime | None = None,
                    before: tuple[datetime, str] | None = None) -> list[ExecutionRecord]:
    """Up to limit executions, newest first, optionally of one pipeline, some statuses, created since a moment.

    ``before`` (created_at, id): only executions after that one in this order (the next page).
    """
    query = select(executions).order_by(executions.c.created_at.desc(), executions.c.id.desc()).limit(limit)
    if before is not None:
        query = query.where(or_(executions.c.created_at < before[0],
                                and_(executions.c.created_at == before[0], executions.c.id < before[1])))
    if pipeline_name is not None:
        query = query.where(executions.c.pipeline_name == pipeline_name)
    if statuses is not None:
        query = query.where(executions.c.status.in_([status.value for status in statuses]))
    if since is not None:
        query = query.where(executions.c.created_at >= since)
    return [to_execution(row) for row in connection.execute(query)]


def require_parent(connection: Connection, parent_execution_id: str | None) -> None:
    """ExecutionNotFoundError unless the parent execution (when given) exists under exactly this id."""
    if parent_execution_id is None:
        return
    if connection.execute(select(executions.c.id).where(executions.c.id == parent_execution_id)).first() is None:
        raise ExecutionNotFoundError(
            f"no parent execution '{parent_execution_id}'; pass the full id of an existing execution"
        )


def update_execution(connection: Connection, execution_id: str, values: dict[str, Any]) -> ExecutionRecord:
    """Write already-validated column values and return the execution as it now is.

    A finished execution's status is final: ExecutionFinishedError when ``values`` would change it.
    """
    if "status" in values:
        current = load_execution(connection, execution_id).status
        if current.is_terminal and values["status"] != current.value:
            raise ExecutionFinishedError(
                f"execution {execution_id} already ended ({current.value}); its status cannot become "
                f"{values['status']} (`forgeline executions retry` reruns a failed or stopped execution)"
            )
    if values:
        connection.execute(update(executions).where(executions.c.id == execution_id).values(**values))
    record = load_execution(connection, execution_id)
    # Raising here rolls the caller's transaction, and so the update, back.
    require_parent(connection, values.get("parent_execution_id"))
    return record


def claim_lost_execution(connection: Connection, execution_id: str, last_heartbeat_at: datetime | None) -> bool:
    """Take over an unfinished execution whose last heartbeat is the one seen: one conditional UPDATE, one winner.

    The heartbeat becomes now and the orchestrator pid is cleared, so the execution looks alive until the new
    orchestrator records itself (or, if it never starts, until the heartbeat grows stale again).
    """
    seen = (executions.c.heartbeat_at.is_(None) if last_heartbeat_at is None
            else executions.c.heartbeat_at == last_heartbeat_at)
    unfinished = executions.c.status.in_([ExecutionStatus.EXECUTING.value, ExecutionStatus.STOPPING.value])
    result = connection.execute(
        update(executions).where(executions.c.id == execution_id, seen, unfinished)
        # No owner and a new epoch: the lost orchestrator is fenced off and the next claim succeeds.
        .values(heartbeat_at=utc_now(), orchestrator_pid=None, owner=None, lease_expires_at=None,
                epoch=executions.c.epoch + 1)
    )
    return result.rowcount == 1


def reopen_execution(connection: Connection, execution_id: str) -> ExecutionRecord:
    """Failed or Stopped -> Executing again (a retry), unowned and at a new epoch so no earlier owner can write."""
    record = load_execution(connection, execution_id)
    if record.status not in (ExecutionStatus.FAILED, ExecutionStatus.STOPPED):
        raise ExecutionFinishedError(
            f"execution {execution_id} is {record.status.value}: only a failed or stopped execution can be reopened"
        )
    connection.execute(
        update(executions).where(executions.c.id == execution_id).values(
            status=ExecutionStatus.EXECUTING.value, failure_reason=None, ended_at=None, orchestrator_pid=None,
            heartbeat_at=utc_now(), owner=None, lease_expires_at=None, epoch=executions.c.epoch + 1)
    )
    return load_execution(connection, execution_id)


def request_stop(connection: Connection, execution_id: str) -> ExecutionRecord:
    """Executing -> Stopping, Queued -> Stopped (nothing runs yet), each in one conditional UPDATE.

    Conditional, so a concurrent finish or claim is never overwritten.
    """
    connection.execute(
        update(executions)
        .where(executions.c.id == execution_id, executions.c.status == ExecutionStatus.QUEUED.value)
        .values(status=ExecutionStatus.STOPPED.value, ended_at=utc_now())
    )
    connection.execute(
        update(executions)
        .where(executions.c.id == execution_id, executions.c.status == ExecutionStatus.EXECUTING.value)
        .values(status=ExecutionStatus.STOPPING.value)
    )
    return load_execution(connection, execution_id)
