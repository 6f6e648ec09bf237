"""Executions whose orchestrator is lost: finding them, claiming one (one claimant wins), and ending one.

An unfinished execution is lost when its orchestrator stopped beating (engine/liveness.py). Whoever acts on it
first claims it at a new epoch, which fences the lost orchestrator off should it wake up; then either a new
orchestrator continues it (a resume) or the claimant ends it: the executor ends the jobs the lost orchestrator
left running, their attempts are recorded as Interrupted, and the execution gets a final status and a reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

from forgeline.config import Settings
from forgeline.engine.jobspecs import job_id
from forgeline.engine.liveness import check_orchestrator
from forgeline.engine.ownership import fenced
from forgeline.engine.runtime import Runtime
from forgeline.engine.transitions import end_execution
from forgeline.executors.base import Executor, JobRef
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import (
    ExecutionRecord,
    ExecutionStatus,
    StepEventDraft,
    StepEventKind,
    StepStatus,
)
from forgeline.store.metadata.updates import AttemptClose, StepRunUpdate

LIVE_STATUSES = (ExecutionStatus.EXECUTING, ExecutionStatus.STOPPING)
INTERRUPTED = "Interrupted"
FIND_LIMIT = 100_000


def find_lost(store: MetadataStore, settings: Settings) -> list[ExecutionRecord]:
    """The Executing and Stopping executions whose orchestrator is lost, oldest first."""
    records = store.list_executions(limit=FIND_LIMIT, statuses=LIVE_STATUSES)
    return [r for r in reversed(records) if check_orchestrator(r, settings, store).lost]


def never_started(record: ExecutionRecord) -> bool:
    """Whether no orchestrator has recorded itself since the execution was last claimed (nothing of it ran since).

    A launcher that died between its claim and the orchestrator's start, or an orchestrator that failed before
    its first step, leaves an execution like this.
    """
    return record.orchestrator_pid is None


def claim_lost(store: MetadataStore, record: ExecutionRecord, owner: str, lease_seconds: float) -> int | None:
    """Own a lost execution at a new epoch (its orchestrator fenced off); None when another claimant was first."""
    if not store.claim_lost_execution(record.id, record.heartbeat_at):
        return None
    return store.claim_execution(record.id, owner, lease_seconds)


def stopped_reason(silent_seconds: float) -> str:
    """Why a Stopping execution whose orchestrator was lost ended Stopped without it."""
    return f"stopped; its orchestrator was lost {silent_seconds:.0f} s ago, before it could stop its jobs"


def end_claimed(runtime: Runtime, execution_id: str, epoch: int, status: ExecutionStatus, reason: str) -> None:
    """End a lost execution claimed at ``epoch`` (see end_lost_execution), with an executor made for the job."""
    executor = runtime.executor_factory(1)
    try:
        end_lost_execution(fenced(runtime.store, epoch), executor, execution_id, status, reason)
    finally:
        executor.shutdown()


def job_ref(execution_id: str, step_name: str, attempt: int) -> JobRef:
    """The reference of an attempt's job, rebuilt from the stored attempt (executors name jobs by their id)."""
    return JobRef(job_id(execution_id, step_name, attempt))


def end_lost_execution(store: MetadataStore, executor: Executor, execution_id: str, status: ExecutionStatus,
                       reason: str) -> None:
    """End a claimed lost execution as ``status`` (Failed or Stopped): jobs ended, steps and attempts settled.

    ``store`` carries the claimant's epoch (engine/ownership.fenced), so a newer claimant's work is never
    overwritten. Steps still running become ``status`` too; steps never started are Skipped.
    """
    step_status = StepStatus.STOPPED if status == ExecutionStatus.STOPPED else StepStatus.FAILED
    why = "stopped" if status == ExecutionStatus.STOPPED else "failed"
    open_attempts = {(a.step_name, a.attempt) for a in store.list_attempts(execution_id) if not a.status.is_terminal}
    for step_name, attempt in sorted(open_attempts):
        executor.cancel(job_ref(execution_id, step_name, attempt), grace_seconds=0)
    for run in store.list_step_runs(execution_id):
        if run.status.is_terminal:
            continue
        ended = next((AttemptClose(number, StepStatus.FAILED, INTERRUPTED, reason)
                      for step_name, number in sorted(open_attempts) if step_name == run.name), None)
        if run.status == StepStatus.PENDING:
            new, failure = StepStatus.SKIPPED, f"execution {why} before this step started"
        else:
            new, failure = step_status, reason
        events = [] if ended is None else [StepEventDraft(
            execution_id, StepEventKind.ATTEMPT, run.name, ended.attempt, ended.status.value,
            {"failure_kind": INTERRUPTED, "failure_reason": reason})]
        events.append(StepEventDraft(execution_id, StepEventKind.STEP, run.name, None, new.value,
                                     {"failure_reason": failure}))
        store.record_step_transition(execution_id, run.name, ended=ended,
                                     update=StepRunUpdate(status=new, failure_reason=failure,
                                                          ended_at=datetime.now(UTC)),
                                     events=events)
    end_execution(store, execution_id, status, reason)
