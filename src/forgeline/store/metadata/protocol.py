"""MetadataStore: everything the engine and the edges record about pipelines, executions, steps and the cache."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from forgeline.store.metadata.alarm_store import AlarmStore
from forgeline.store.metadata.endpoint_store import EndpointStore
from forgeline.store.metadata.housekeeping_store import HousekeepingStore
from forgeline.store.metadata.model_package_store import ModelPackageStore
from forgeline.store.metadata.records import (
    CacheEntry,
    ContentIndexEntry,
    ExecutionRecord,
    ExecutionStatus,
    MetricPoint,
    PipelineSummary,
    PipelineVersion,
    StepAttempt,
    StepEvent,
    StepEventDraft,
    StepRun,
    StepStatus,
)
from forgeline.store.metadata.schedule_store import ScheduleStore
from forgeline.store.metadata.server_store import ServerStore
from forgeline.store.metadata.tokens_store import TokenStore
from forgeline.store.metadata.trigger_store import TriggerStore
from forgeline.store.metadata.updates import AttemptClose, AttemptOpen, ExecutionUpdate, StepRunUpdate


class MetadataStore(ModelPackageStore, EndpointStore, HousekeepingStore, TokenStore, ServerStore, ScheduleStore,
                    TriggerStore, AlarmStore, Protocol):
    """Durable record of pipelines, executions, steps, attempts, cache and metrics; each call is one transaction.

    Writes an orchestrator makes take ``epoch``: when given and not the execution's current epoch (another
    owner claimed it since), the write is refused with StaleOwnerError and nothing changes. A call that meets a
    locked or unreachable database keeps trying for a configured time, then raises StoreUnavailableError; a
    SQLite file deleted or replaced under the store raises StoreReplacedError.
    """

    def close(self) -> None:
        """Close pooled connections (the store stays usable and reconnects on its next call)."""
        ...

    def save_pipeline_version(self, name: str, definition: dict[str, Any],
                              code_snapshot: str | None = None) -> PipelineVersion:
        """Store the definition as the pipeline's next version, or return the stored version with its digest.

        A code_snapshot given becomes the version's latest snapshot (also on a version stored before).
        """
        ...

    def get_pipeline_version(self, name: str, version: int | None = None) -> PipelineVersion:
        """One version of a pipeline (None: the newest); PipelineNotFoundError when absent."""
        ...

    def list_pipeline_versions(self, name: str) -> list[PipelineVersion]:
        """Every version of a pipeline, oldest first; PipelineNotFoundError when it has none."""
        ...

    def list_pipelines(self) -> list[PipelineSummary]:
        """Every pipeline with its newest version and execution count, by name."""
        ...

    def create_execution(
        self,
        *,
        execution_id: str,
        pipeline_name: str,
        pipeline_version: int,
        parameters: dict[str, Any],
        work_dir: str,
        steps: list[tuple[str, str]],
        parent_execution_id: str | None = None,
        status: ExecutionStatus = ExecutionStatus.EXECUTING,
        code_snapshot: str | None = None,
        started_by: dict[str, Any] | None = None,
    ) -> ExecutionRecord:
        """Record a new Executing (or Queued) execution and one Pending StepRun per (name, kind), in order.

        parent_execution_id names the execution a selective run takes outputs from; it must exist.
        code_snapshot is the id of the code snapshot (forgeline.store.snapshots) the execution runs from;
        started_by says who or what started it (a JSON object: {"kind": "schedule", "name": "weekly"}).
        """
        ...

    def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with this id or unique id prefix (4+ characters); ExecutionNotFoundError otherwise."""
        ...

    def list_executions(self, pipeline_name: str | None = None, limit: int = 50, *,
                        statuses: Collection[ExecutionStatus] | None = None,
                        since: datetime | None = None,
                        before: tuple[datetime, str] | None = None) -> list[ExecutionRecord]:
        """Executions, newest first, optionally of one pipeline, of some statuses, created at or after since.

        The order is (created_at, id), both descending; ``before`` (created_at, id) starts after that execution.
        """
        ...

    def update_execution(self, execution_id: str, update: ExecutionUpdate, *, epoch: int | None = None,
                         events: Sequence[StepEventDraft] = ()) -> ExecutionRecord:
        """Apply the update and append ``events``, in one transaction; a finished execution's status is final.

        ExecutionFinishedError when the update would change a finished execution's status.

        ExecutionNotFoundError for an unknown execution or parent_execution_id (nothing changes then).
        """
        ...

    def request_stop(self, execution_id: str) -> ExecutionRecord:
        """Executing -> Stopping, Queued -> Stopped (nothing runs yet); any other execution comes back unchanged."""
        ...

    def reopen_execution(self, execution_id: str) -> ExecutionRecord:
        """Failed or Stopped -> Executing for a retry: unowned, at a new epoch; ExecutionFinishedError otherwise."""
        ...

    def claim_lost_execution(self, execution_id: str, last_heartbeat_at: datetime | None) -> bool:
        """Take over an unfinished execution whose last heartbeat is still the one seen; False if another did.

        The owner and lease are cleared and the epoch counts up, so the lost orchestrator's writes are refused.
        """
        ...

    def claim_execution(self, execution_id: str, owner: str, lease_seconds: float) -> int | None:
        """Own an unfinished execution for lease_seconds; the new epoch, or None when another owner's lease is live.

        Succeeds when the execution is unowned, its lease expired, ``owner`` holds it already, or it is Queued
        (it becomes Executing, started now). Each success counts the epoch up and beats the heartbeat.
        """
        ...

    def renew_lease(self, execution_id: str, epoch: int, lease_seconds: float) -> bool:
        """Extend the lease held at ``epoch`` by lease_seconds from now and beat the heartbeat; False if lost."""
        ...

    def claim_next_queued(self, owner: str, lease_seconds: float, max_running: int) -> tuple[str, int] | None:
        """Claim the oldest Queued execution when fewer than max_running hold a live lease; (id, epoch) or None."""
        ...

    def list_step_runs(self, execution_id: str) -> list[StepRun]:
        """The execution's step runs in the order they were added."""
        ...

    def get_step_run(self, execution_id: str, name: str) -> StepRun:
        """One step run; StepNotFoundError when the execution has no such step."""
        ...

    def update_step_run(self, execution_id: str, name: str, update: StepRunUpdate, *,
                        epoch: int | None = None) -> StepRun:
        """Apply the update to one step run; StepNotFoundError when the execution has no such step."""
        ...

    def add_step_runs(self, execution_id: str, steps: list[tuple[str, str]], *, epoch: int | None = None) -> None:
        """Append Pending step runs (e.g. ForEach iterations); names already present are ignored."""
        ...

    def start_attempt(self, execution_id: str, step_name: str, *, log_path: str | None,
                      epoch: int | None = None) -> StepAttempt:
        """Open the step's next attempt (Executing) and count it on the StepRun."""
        ...

    def finish_attempt(
        self,
        execution_id: str,
        step_name: str,
        attempt: int,
        *,
        status: StepStatus,
        failure_kind: str | None = None,
        failure_reason: str | None = None,
        epoch: int | None = None,
    ) -> StepAttempt:
        """Close an attempt with its final status and, when it failed, why."""
        ...

    def record_step_transition(self, execution_id: str, step_name: str, *, ended: AttemptClose | None = None,
                               update: StepRunUpdate | None = None, started: AttemptOpen | None = None,
                               events: Sequence[StepEventDraft] = (), epoch: int | None = None) -> None:
        """In one transaction: end an attempt, update the step run, start an attempt, append events (in order).

        StepNotFoundError (nothing written) for an unknown step or attempt to end; an attempt number started
        twice is refused by the database.
        """
        ...

    def list_attempts(self, execution_id: str, step_name: str | None = None) -> list[StepAttempt]:
        """Attempts of one step, or of the whole execution, in the order they started."""
        ...

    def append_events(self, events: Sequence[StepEventDraft], *, epoch: int | None = None) -> list[StepEvent]:
        """Append events in order; each gets its cursor (id), growing in commit order within an execution."""
        ...

    def events(self, execution_id: str, after: int | None = None, limit: int | None = 1000) -> list[StepEvent]:
        """The execution's events with a cursor above ``after`` (None: all), oldest first, at most ``limit``."""
        ...

    def put_cache_entry(self, entry: CacheEntry, *, epoch: int | None = None) -> None:
        """Add a reusable result of a succeeded step; older entries with the same key stay."""
        ...

    def find_cache_entries(
        self, cache_key: str, *, not_before: datetime | None = None, limit: int = 5
    ) -> list[CacheEntry]:
        """Up to limit entries with this key, newest first, none created before not_before."""
        ...

    def latest_cache_entry(self, pipeline_name: str, step_name: str) -> CacheEntry | None:
        """The newest entry of one pipeline step whatever its key (to explain a cache miss), or None."""
        ...

    def delete_cache_entries(self, *, pipeline_name: str | None = None, cache_key: str | None = None) -> int:
        """Delete the entries matching every given filter (none given: all) and return how many went."""
        ...

    def lookup_content(self, paths: Iterable[str]) -> dict[str, ContentIndexEntry]:
        """The content index's entries for those of these paths it knows, keyed by path."""
        ...

    def remember_content(self, entries: Iterable[ContentIndexEntry]) -> None:
        """Insert or replace content index entries (for a path given twice, the last wins)."""
        ...

    def add_metric_points(self, points: Sequence[MetricPoint], *, epoch: int | None = None) -> None:
        """Append metric points of existing step runs; StepNotFoundError names a missing step."""
        ...

    def list_metric_points(
        self, execution_id: str, step_name: str | None = None, name: str | None = None
    ) -> list[MetricPoint]:
        """An execution's metric points, optionally of one step and metric, ordered by step, attempt and seq."""
        ...
