"""Typed updates of executions and step runs: each field left UNSET stays as stored, None clears it."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import Enum
from typing import Any, Final

from forgeline.store.metadata.records import ExecutionStatus, StepStatus


class Unset(Enum):
    """The type of UNSET: a field the update leaves alone (None would mean "clear it")."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


@dataclass(frozen=True)
class ExecutionUpdate:
    """Fields of an execution to change; ownership, epoch and lease change only through claims."""

    status: ExecutionStatus | Unset = UNSET
    started_at: datetime | None | Unset = UNSET
    ended_at: datetime | None | Unset = UNSET
    failure_reason: str | None | Unset = UNSET
    orchestrator_pid: int | None | Unset = UNSET
    heartbeat_at: datetime | None | Unset = UNSET
    parent_execution_id: str | None | Unset = UNSET  # an existing execution's full id, or None
    code_snapshot: str | None | Unset = UNSET

    def changes(self) -> dict[str, Any]:
        """The fields this update sets, by name."""
        return _changes(self)


@dataclass(frozen=True)
class StepRunUpdate:
    """Fields of a step run to change (its execution, name and kind never change)."""

    status: StepStatus | Unset = UNSET
    started_at: datetime | None | Unset = UNSET
    ended_at: datetime | None | Unset = UNSET
    attempts: int | Unset = UNSET
    failure_reason: str | None | Unset = UNSET
    outputs: dict[str, str] | None | Unset = UNSET  # None: empty
    properties: dict[str, Any] | None | Unset = UNSET  # None: empty
    cache_hit: bool | Unset = UNSET
    cache_source: str | None | Unset = UNSET
    metrics: dict[str, float] | None | Unset = UNSET  # None: empty

    def changes(self) -> dict[str, Any]:
        """The fields this update sets, by name."""
        return _changes(self)


def _changes(update: ExecutionUpdate | StepRunUpdate) -> dict[str, Any]:
    return {item.name: value for item in fields(update) if (value := getattr(update, item.name)) is not UNSET}


@dataclass(frozen=True)
class AttemptClose:
    """An attempt to close with its final status and, when it failed, why."""

    attempt: int
    status: StepStatus
    failure_kind: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class AttemptOpen:
    """The attempt to open (Executing, counted on the step run) and where its log goes."""

    attempt: int
    log_path: str | None = None
