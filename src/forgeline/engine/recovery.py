"""Continue an existing execution: retry what failed, or resume after the orchestrator itself died.

A resume continues: steps that succeeded keep their outputs, steps that failed or were stopped keep that
status (``retry`` reruns them), and the attempts the dead orchestrator left open are settled by the new one
(see engine/adoption.py): jobs that finished meanwhile are adopted, jobs still running are ended and run again.
"""

from __future__ import annotations

from forgeline.config import Settings
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.launch import launch_orchestrator
from forgeline.engine.liveness import check_orchestrator
from forgeline.engine.lost import claim_lost, end_claimed, stopped_reason
from forgeline.engine.ownership import owner_name
from forgeline.engine.runtime import Runtime
from forgeline.errors import ForgelineError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionRecord, ExecutionStatus, StepRun, StepStatus
from forgeline.store.metadata.updates import StepRunUpdate
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.pipeline import Pipeline


def not_chosen(run: StepRun, graph: StepGraph, runs: dict[str, StepRun]) -> bool:
    """Whether a Skipped step sits on the branch its (succeeded) ConditionStep did not take."""
    owner = graph.branch_of.get(run.name)
    if owner is None:
        return False
    condition = runs.get(owner[0])
    if condition is None or condition.status != StepStatus.SUCCEEDED:
        return False
    return bool(condition.properties.get("outcome")) != owner[1]


def retry_execution(execution_id: str, runtime: Runtime, fork: bool = False) -> PipelineExecution:
    """Rerun the failed, stopped and not-run steps of a finished execution, keeping what succeeded."""
    settings, store = runtime.settings, runtime.store
    record = store.get_execution(execution_id)
    if not record.status.is_terminal:
        raise ForgelineError(f"execution {record.id} is still {record.status.value}; stop it first, "
                             "or `forgeline executions resume` it if its orchestrator died")
    if record.status == ExecutionStatus.SUCCEEDED:
        raise ForgelineError(f"execution {record.id} succeeded: there is nothing to retry")
    graph = pipeline_of(store, record.pipeline_name, record.pipeline_version).graph
    runs = {run.name: run for run in store.list_step_runs(record.id)}
    for run in runs.values():
        if run.status == StepStatus.SUCCEEDED or (run.status == StepStatus.SKIPPED and not_chosen(run, graph, runs)):
            continue
        store.update_step_run(record.id, run.name,
                              StepRunUpdate(status=StepStatus.PENDING, failure_reason=None, ended_at=None))
    # Executing at a new epoch with a fresh heartbeat and no pid: alive to every reader until the new
    # orchestrator records itself, and closed to any earlier orchestrator's writes
    store.reopen_execution(record.id)
    store.close()
    notice = launch_orchestrator(record.id, settings, record.work_dir, fork)
    return PipelineExecution(record.id, runtime, end_notice=notice)


def resume_execution(execution_id: str, runtime: Runtime, fork: bool = False) -> PipelineExecution:
    """Take over an execution whose orchestrator died; a new orchestrator continues it where it stood."""
    settings, store = runtime.settings, runtime.store
    record = store.get_execution(execution_id)
    if record.status.is_terminal:
        raise ForgelineError(f"execution {record.id} already ended ({record.status.value}); "
                             "use `forgeline executions retry` to rerun its failed steps")
    liveness = check_orchestrator(record, settings, store)
    if not liveness.lost:
        raise ForgelineError(
            f"execution {record.id} is still run by its orchestrator (pid {record.orchestrator_pid or 'starting'}, "
            f"heard from {liveness.silent_seconds:.0f} s ago); nothing to resume — an orchestrator is lost once "
            f"silent for {settings.orchestrator_timeout_seconds:g} s (FORGELINE_ORCHESTRATOR_TIMEOUT)")
    if not take_over(store, record, settings, fork):
        raise ForgelineError(f"execution {record.id} was resumed by another forgeline command meanwhile")
    return PipelineExecution(record.id, runtime)


def resume_if_lost(store: MetadataStore, record: ExecutionRecord, settings: Settings, fork: bool = False) -> bool:
    """Resume ``record`` when its orchestrator is lost and settings ask for it (auto-resume); True if resumed."""
    if not settings.auto_resume:
        return False
    record = store.get_execution(record.id)  # claim against the heartbeat as it is now
    if not check_orchestrator(record, settings, store).lost:
        return False
    return take_over(store, record, settings, fork)


def take_over(store: MetadataStore, record: ExecutionRecord, settings: Settings, fork: bool) -> bool:
    """Claim a lost execution (one claimant wins) and hand it to a new orchestrator; False if another claimed it."""
    if not store.claim_lost_execution(record.id, record.heartbeat_at):
        return False
    store.close()  # no database file may be open across a fork
    launch_orchestrator(record.id, settings, record.work_dir, fork)
    return True


def stop_execution(execution_id: str, runtime: Runtime) -> ExecutionRecord:
    """Ask the execution to stop (Queued or Executing); one whose orchestrator is lost ends Stopped at once.

    A lost orchestrator cannot stop its jobs: they are ended here through the executor, so the execution never
    stays Stopping for good.
    """
    store, settings = runtime.store, runtime.settings
    record = store.request_stop(store.get_execution(execution_id).id)
    if record.status != ExecutionStatus.STOPPING:
        return record
    liveness = check_orchestrator(record, settings, store)
    if not liveness.lost:
        return record
    epoch = claim_lost(store, record, owner_name(), settings.orchestrator_timeout_seconds)
    if epoch is not None:  # else a launcher or another command took it over meanwhile
        end_claimed(runtime, record.id, epoch, ExecutionStatus.STOPPED, stopped_reason(liveness.silent_seconds))
    return store.get_execution(record.id)


def pipeline_of(store: MetadataStore, name: str, version: int) -> Pipeline:
    """The stored pipeline definition an execution runs."""
    return Pipeline.from_definition(store.get_pipeline_version(name, version).definition)
