"""An execution as stored, its statuses, and how an executions row becomes one.

Light on purpose: a process that only starts a pipeline and waits for it reads its execution with these alone
(``sqlite_execution_list.py``); ``records.py`` holds every other record and names these too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only a type here: the sqlite3 reader of executions converts its rows without SQLAlchemy
    from sqlalchemy import Row


class ExecutionStatus(StrEnum):
    """Lifecycle of a pipeline execution (SageMaker's vocabulary)."""

    QUEUED = "Queued"  # waiting for a launcher to claim it; no orchestrator yet
    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"

    @property
    def is_terminal(self) -> bool:
        """True once the execution can no longer change."""
        return self in (ExecutionStatus.STOPPED, ExecutionStatus.FAILED, ExecutionStatus.SUCCEEDED)


class StepStatus(StrEnum):
    """Lifecycle of one step inside an execution (SageMaker's vocabulary, plus Skipped).

    Interrupted is an attempt's status only: a spot training job killed and restarted within the same step.
    """

    PENDING = "Pending"
    STARTING = "Starting"
    QUEUED = "Queued"  # waiting for a launcher to claim it; no orchestrator yet
    EXECUTING = "Executing"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    FAILED = "Failed"
    SUCCEEDED = "Succeeded"
    SKIPPED = "Skipped"
    INTERRUPTED = "Interrupted"

    @property
    def is_terminal(self) -> bool:
        """True once the step can no longer change in this round."""
        return self in (StepStatus.STOPPED, StepStatus.FAILED, StepStatus.SUCCEEDED, StepStatus.SKIPPED,
                        StepStatus.INTERRUPTED)


@dataclass(frozen=True)
class ExecutionRecord:
    """A pipeline execution as stored."""

    id: str
    pipeline_name: str
    pipeline_version: int
    status: ExecutionStatus
    parameters: dict[str, Any]
    work_dir: str
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    failure_reason: str | None = None
    orchestrator_pid: int | None = None
    heartbeat_at: datetime | None = None
    parent_execution_id: str | None = None
    owner: str | None = None  # who holds the lease (an orchestrator or a launcher), None when unowned
    epoch: int = 0  # fencing token: counts claims; a write carrying an older epoch is refused
    lease_expires_at: datetime | None = None
    code_snapshot: str | None = None  # id of the code snapshot in the artifact store the execution runs from
    started_by: dict[str, Any] | None = None  # who or what started it: {"kind": "schedule", "name": ...}, ...


def to_execution(row: Row[Any] | SimpleNamespace) -> ExecutionRecord:
    """An executions row as an ExecutionRecord."""
    return ExecutionRecord(
        id=row.id,
        pipeline_name=row.pipeline_name,
        pipeline_version=row.pipeline_version,
        status=ExecutionStatus(row.status),
        parameters=row.parameters,
        work_dir=row.work_dir,
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        failure_reason=row.failure_reason,
        orchestrator_pid=row.orchestrator_pid,
        heartbeat_at=row.heartbeat_at,
        parent_execution_id=row.parent_execution_id,
        owner=row.owner,
        epoch=row.epoch,
        lease_expires_at=row.lease_expires_at,
        code_snapshot=row.code_snapshot,
        started_by=row.started_by,
    )


def require_aware(name: str, value: datetime | None) -> None:
    """ValueError naming the argument when a datetime is naive (the store only takes aware ones)."""
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{name}={value.isoformat()} is naive; pass a timezone-aware datetime")
