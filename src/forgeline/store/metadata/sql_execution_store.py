"""The execution half of SqlMetadataStore: executions, ownership, step runs, attempts and the step event log.

Every write an orchestrator makes takes an optional ``epoch``: given, the write is refused with StaleOwnerError
unless it is the execution's current epoch (see ownership_repository), in the write's own transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from forgeline.store.metadata import (
    executions_repository,
    ownership_repository,
    step_events_repository,
    steps_repository,
)
from forgeline.store.metadata.records import (
    ExecutionRecord,
    ExecutionStatus,
    StepAttempt,
    StepEvent,
    StepEventDraft,
    StepRun,
    StepStatus,
)
from forgeline.store.metadata.rows import execution_values, step_run_values
from forgeline.store.metadata.transactions import Transactions
from forgeline.store.metadata.updates import AttemptClose, AttemptOpen, ExecutionUpdate, StepRunUpdate


class SqlExecutionStore:
    """Executions, their ownership, steps, attempts and events on a SQL database; one transaction per call."""

    _tx: Transactions

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
        """Record a new Executing (or Queued) execution and one Pending StepRun per (name, kind), in order."""
        names = [name for name, _ in steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate step names for execution '{execution_id}': {', '.join(duplicates)}")

        def work(connection: Connection) -> ExecutionRecord:
            executions_repository.insert_execution(
                connection, execution_id=execution_id, pipeline_name=pipeline_name,
                pipeline_version=pipeline_version, parameters=parameters, work_dir=work_dir,
                parent_execution_id=parent_execution_id, status=status, code_snapshot=code_snapshot,
                started_by=started_by,
            )
            steps_repository.append_step_runs(connection, execution_id, steps)
            return executions_repository.load_execution(connection, execution_id)

        return self._tx.write(work)

    def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with this id or unique id prefix (4+ characters); ExecutionNotFoundError otherwise."""
        return self._tx.read(lambda connection: executions_repository.resolve_execution(connection, execution_id))

    def list_executions(self, pipeline_name: str | None = None, limit: int = 50, *,
                        statuses: Collection[ExecutionStatus] | None = None,
                        since: datetime | None = None,
                        before: tuple[datetime, str] | None = None) -> list[ExecutionRecord]:
        """Executions, newest first, optionally of one pipeline, of some statuses, created at or after since."""
        return self._tx.read(lambda connection: executions_repository.list_executions(
            connection, pipeline_name, limit, statuses, since, before))

    def update_execution(self, execution_id: str, update: ExecutionUpdate, *, epoch: int | None = None,
                         events: Sequence[StepEventDraft] = ()) -> ExecutionRecord:
        """Apply ``update`` and append ``events`` together; ExecutionFinishedError when a final status would change."""
        values = execution_values(update)

        def work(connection: Connection) -> ExecutionRecord:
            ownership_repository.check_epoch(connection, execution_id, epoch)
            record = executions_repository.update_execution(connection, execution_id, values)
            if events:
                step_events_repository.append_events(connection, events)
            return record

        return self._tx.write(work)

    def request_stop(self, execution_id: str) -> ExecutionRecord:
        """Executing -> Stopping, Queued -> Stopped; any other execution comes back unchanged."""
        return self._tx.write(lambda connection: executions_repository.request_stop(connection, execution_id))

    def reopen_execution(self, execution_id: str) -> ExecutionRecord:
        """Failed or Stopped -> Executing (a retry), unowned at a new epoch; ExecutionFinishedError otherwise."""
        return self._tx.write(lambda connection: executions_repository.reopen_execution(connection, execution_id))

    def claim_lost_execution(self, execution_id: str, last_heartbeat_at: datetime | None) -> bool:
        """Take over an unfinished execution whose last heartbeat is still the one seen; False if another did."""
        return self._tx.write(lambda connection: executions_repository.claim_lost_execution(
            connection, execution_id, last_heartbeat_at))

    def claim_execution(self, execution_id: str, owner: str, lease_seconds: float) -> int | None:
        """Own the execution for ``lease_seconds`` when it is free (see ownership_repository); the new epoch."""
        return self._tx.write(lambda connection: ownership_repository.claim_execution(
            connection, execution_id, owner, lease_seconds))

    def renew_lease(self, execution_id: str, epoch: int, lease_seconds: float) -> bool:
        """Extend the lease held at ``epoch`` (and beat the heartbeat); False when it is no longer held."""
        return self._tx.write(lambda connection: ownership_repository.renew_lease(
            connection, execution_id, epoch, lease_seconds))

    def claim_next_queued(self, owner: str, lease_seconds: float, max_running: int) -> tuple[str, int] | None:
        """Claim the oldest Queued execution unless ``max_running`` leases are live; (execution id, epoch)."""
        return self._tx.write(lambda connection: ownership_repository.claim_next_queued(
            connection, owner, lease_seconds, max_running))

    def list_step_runs(self, execution_id: str) -> list[StepRun]:
        """The execution's step runs in the order they were added."""
        return self._tx.read(lambda connection: steps_repository.list_step_runs(connection, execution_id))

    def get_step_run(self, execution_id: str, name: str) -> StepRun:
        """One step run; StepNotFoundError when the execution has no such step."""
        return self._tx.read(lambda connection: steps_repository.load_step_run(connection, execution_id, name))

    def update_step_run(self, execution_id: str, name: str, update: StepRunUpdate, *,
                        epoch: int | None = None) -> StepRun:
        """Apply ``update`` to one step run; StepNotFoundError when the execution has no such step."""
        values = step_run_values(update)

        def work(connection: Connection) -> StepRun:
            ownership_repository.check_epoch(connection, execution_id, epoch)
            return steps_repository.update_step_run(connection, execution_id, name, values)

        return self._tx.write(work)

    def add_step_runs(self, execution_id: str, steps: list[tuple[str, str]], *, epoch: int | None = None) -> None:
        """Append Pending step runs (e.g. ForEach iterations); names already present are ignored."""

        def work(connection: Connection) -> None:
            executions_repository.load_execution(connection, execution_id)
            ownership_repository.check_epoch(connection, execution_id, epoch)
            steps_repository.append_step_runs(connection, execution_id, steps)

        self._tx.write(work)

    def start_attempt(self, execution_id: str, step_name: str, *, log_path: str | None,
                      epoch: int | None = None) -> StepAttempt:
        """Open the step's next attempt (Executing) and count it on the StepRun."""

        def work(connection: Connection) -> StepAttempt:
            ownership_repository.check_epoch(connection, execution_id, epoch)
            return steps_repository.start_attempt(connection, execution_id, step_name, log_path)

        return self._tx.write(work)

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

        def work(connection: Connection) -> StepAttempt:
            ownership_repository.check_epoch(connection, execution_id, epoch)
            return steps_repository.finish_attempt(connection, execution_id, step_name, attempt, status=status,
                                                   failure_kind=failure_kind, failure_reason=failure_reason)

        return self._tx.write(work)

    def record_step_transition(self, execution_id: str, step_name: str, *, ended: AttemptClose | None = None,
                               update: StepRunUpdate | None = None, started: AttemptOpen | None = None,
                               events: Sequence[StepEventDraft] = (), epoch: int | None = None) -> None:
        """End an attempt, update the step run, start an attempt and append events: one transaction, in order."""
        values = step_run_values(update) if update is not None else {}
        if started is not None:
            values["attempts"] = started.attempt

        def work(connection: Connection) -> None:
            if epoch is None:
                step_events_repository.lock_execution(connection, execution_id)
            else:
                ownership_repository.check_epoch(connection, execution_id, epoch)
            if ended is not None:
                steps_repository.close_attempt(connection, execution_id, step_name, ended.attempt,
                                               status=ended.status, failure_kind=ended.failure_kind,
                                               failure_reason=ended.failure_reason)
            steps_repository.write_step_run(connection, execution_id, step_name, values)
            if started is not None:
                steps_repository.insert_attempt(connection, execution_id, step_name, started.attempt, started.log_path)
            step_events_repository.insert_events(connection, events)

        self._tx.write(work)

    def list_attempts(self, execution_id: str, step_name: str | None = None) -> list[StepAttempt]:
        """Attempts of one step, or of the whole execution, in the order they started."""
        return self._tx.read(lambda connection: steps_repository.list_attempts(connection, execution_id, step_name))

    def append_events(self, events: Sequence[StepEventDraft], *, epoch: int | None = None) -> list[StepEvent]:
        """Append events in order and return them with their cursors; ``epoch`` fences each event's execution."""

        def work(connection: Connection) -> list[StepEvent]:
            for execution_id in sorted({event.execution_id for event in events}):
                ownership_repository.check_epoch(connection, execution_id, epoch)
            return step_events_repository.append_events(connection, events)

        return self._tx.write(work) if events else []

    def events(self, execution_id: str, after: int | None = None, limit: int | None = 1000) -> list[StepEvent]:
        """The execution's events after the cursor ``after`` (None: from the start), oldest first, at most limit."""
        return self._tx.read(lambda connection: step_events_repository.list_events(
            connection, execution_id, after, limit))
