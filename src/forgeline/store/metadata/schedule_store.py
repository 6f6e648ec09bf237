"""ScheduleStore: the part of the metadata store schedules use (cron schedules and the due times they fired)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class CatchupPolicy(StrEnum):
    """What a schedule does with due times it missed while no server ran."""

    NONE = "none"  # skip them: the next fire is the next future due time
    LAST = "last"  # one execution for the latest missed due time


class OverlapPolicy(StrEnum):
    """What a due time does while the schedule's previous execution still runs."""

    SKIP = "skip"  # record the fire as skipped, start nothing
    ALLOW = "allow"  # start another execution


class FireOutcome(StrEnum):
    """What became of a due time (a schedule fire) or an arrived object (a trigger object)."""

    PENDING = "pending"  # claimed; its execution is being started
    STARTED = "started"
    SKIPPED = "skipped"  # the previous execution still ran (overlap skip)
    REJECTED = "rejected"  # an invalid trigger file or parameter: nothing started
    FAILED = "failed"  # the execution could not be started (see reason)


@dataclass(frozen=True)
class StoredPipelineRef:
    """The stored pipeline a schedule or trigger starts: name, version, code snapshot, and the file it came from."""

    pipeline_name: str
    pipeline_version: int | None = None
    code_snapshot: str | None = None
    pipeline_source: str | None = None
    work_dir: str | None = None  # where relative data paths resolve (the folder it was created from)


@dataclass(frozen=True)
class ScheduleDraft:
    """A schedule to create: what it starts, when, with which parameters and policies."""

    name: str
    pipeline: StoredPipelineRef
    cron: str
    timezone: str
    parameters: dict[str, Any]
    catchup: CatchupPolicy
    overlap: OverlapPolicy
    next_fire_at: datetime


@dataclass(frozen=True)
class ScheduleRecord:
    """A stored schedule with where it stands: the next due time, the last fire and its execution."""

    name: str
    pipeline: StoredPipelineRef
    cron: str
    timezone: str
    parameters: dict[str, Any]
    catchup: CatchupPolicy
    overlap: OverlapPolicy
    paused: bool
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_execution_id: str | None
    created_at: datetime
    updated_at: datetime
    last_outcome: FireOutcome | None = None
    last_reason: str | None = None


@dataclass(frozen=True)
class ScheduleFire:
    """One due time of a schedule and what became of it."""

    schedule_name: str
    due_at: datetime
    outcome: FireOutcome
    created_at: datetime
    execution_id: str | None = None
    reason: str | None = None


class ScheduleStore(Protocol):
    """Schedules by name and their fires; each call is one transaction."""

    def create_schedule(self, draft: ScheduleDraft) -> ScheduleRecord:
        """Store a new schedule; ScheduleError when the name is taken."""
        ...

    def get_schedule(self, name: str) -> ScheduleRecord:
        """One schedule with its last fire; ScheduleNotFoundError names the ones that exist."""
        ...

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule with its last fire, by name."""
        ...

    def set_schedule_paused(self, name: str, paused: bool, next_fire_at: datetime | None) -> ScheduleRecord:
        """Pause or resume a schedule; ``next_fire_at`` replaces its next due time."""
        ...

    def delete_schedule(self, name: str) -> None:
        """Remove a schedule and its fires; ScheduleNotFoundError when there is none by that name."""
        ...

    def claim_schedule_fire(self, name: str, due_at: datetime, next_fire_at: datetime) -> bool:
        """Record ``due_at`` as fired (pending) and move the schedule on; False when it had fired already."""
        ...

    def skip_schedule_to(self, name: str, next_fire_at: datetime) -> None:
        """Move a schedule's next due time on without firing (missed due times under catch-up none)."""
        ...

    def finish_schedule_fire(self, name: str, due_at: datetime, outcome: FireOutcome, *,
                             execution_id: str | None = None, reason: str | None = None) -> None:
        """Record what became of a claimed fire (and the schedule's last execution when one started)."""
        ...

    def list_schedule_fires(self, name: str | None = None, *, outcome: FireOutcome | None = None,
                            limit: int = 50) -> list[ScheduleFire]:
        """Fires matching the filters, newest due time first."""
        ...

    def collect_schedule_fires(self, before: datetime, *, dry_run: bool = False) -> int:
        """Delete finished fires due before ``before``, except each schedule's latest; how many (would) go."""
        ...
