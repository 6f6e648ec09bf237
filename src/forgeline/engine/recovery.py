"""Continue an existing execution: retry what failed, or resume after the orchestrator itself died."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

from forgeline.config import Settings
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.launch import launch_orchestrator
from forgeline.errors import ForgelineError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionStatus, StepRun, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.pipeline import Pipeline

ORCHESTRATOR_TIMEOUT_SECONDS = 30.0


def process_alive(pid: int | None) -> bool:
    """Whether a process with this id exists (and is not a zombie) on this machine."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def not_chosen(run: StepRun, graph: StepGraph, runs: dict[str, StepRun]) -> bool:
    """Whether a Skipped step sits on the branch its (succeeded) ConditionStep did not take."""
    owner = graph.branch_of.get(run.name)
    if owner is None:
        return False
    condition = runs.get(owner[0])
    if condition is None or condition.status != StepStatus.SUCCEEDED:
        return False
    return bool(condition.properties.get("outcome")) != owner[1]


def retry_execution(execution_id: str, settings: Settings | None = None, fork: bool = False) -> PipelineExecution:
    """Rerun the failed, stopped and not-run steps of a finished execution, keeping what succeeded."""
    settings = settings or Settings.from_env()
    store = SqlMetadataStore(settings.database_url)
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
        store.update_step_run(record.id, run.name, status=StepStatus.PENDING, failure_reason=None, ended_at=None)
    store.update_execution(record.id, status=ExecutionStatus.EXECUTING, failure_reason=None, ended_at=None)
    store.close()
    launch_orchestrator(record.id, settings, record.work_dir, fork)
    return PipelineExecution(record.id, store, settings)


def resume_execution(execution_id: str, settings: Settings | None = None,
                     fork: bool = False) -> PipelineExecution:
    """Take over an execution whose orchestrator died: end its orphaned jobs and rerun the steps they ran."""
    settings = settings or Settings.from_env()
    store = SqlMetadataStore(settings.database_url)
    record = store.get_execution(execution_id)
    if record.status.is_terminal:
        raise ForgelineError(f"execution {record.id} already ended ({record.status.value}); "
                             "use `forgeline executions retry` to rerun its failed steps")
    heartbeat_age = (datetime.now(UTC) - (record.heartbeat_at or record.created_at)).total_seconds()
    if process_alive(record.orchestrator_pid) and heartbeat_age < ORCHESTRATOR_TIMEOUT_SECONDS:
        raise ForgelineError(f"execution {record.id} is still run by its orchestrator (pid "
                             f"{record.orchestrator_pid}); nothing to resume")
    interrupt_orphans(store, record.id)
    store.close()
    launch_orchestrator(record.id, settings, record.work_dir, fork)
    return PipelineExecution(record.id, store, settings)


def interrupt_orphans(store: MetadataStore, execution_id: str) -> None:
    """Kill the jobs a dead orchestrator left running and record their attempts as interrupted."""
    for attempt in store.list_attempts(execution_id):
        if attempt.status.is_terminal:
            continue
        if attempt.pid and process_alive(attempt.pid):
            try:
                os.killpg(attempt.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        store.finish_attempt(execution_id, attempt.step_name, attempt.attempt, status=StepStatus.FAILED,
                             failure_kind="Interrupted", failure_reason="the orchestrator died during this attempt")
    for run in store.list_step_runs(execution_id):
        if run.status in (StepStatus.EXECUTING, StepStatus.STARTING, StepStatus.STOPPING):
            store.update_step_run(execution_id, run.name, status=StepStatus.PENDING)


def pipeline_of(store: MetadataStore, name: str, version: int) -> Pipeline:
    """The stored pipeline definition an execution runs."""
    return Pipeline.from_definition(store.get_pipeline_version(name, version).definition)
