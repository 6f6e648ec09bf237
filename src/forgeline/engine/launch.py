"""Start an execution: check parameters, store the definition, hand the run to a detached orchestrator.

Who starts the orchestrator is a Launcher: ProcessLauncher forks or spawns one per execution at once (the CLI
and the Python API); QueueLauncher claims Queued executions from the metadata store, at most ``max_running``
at a time, and spawns an orchestrator for each (a long-running server).
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from forgeline.config import Settings
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.ownership import owner_name
from forgeline.engine.plan import StepPlan, plan_pipeline
from forgeline.engine.runtime import Runtime
from forgeline.errors import ForgelineError, StoreNotFoundError
from forgeline.jobs.function import WORKER_ENV
from forgeline.store.metadata.connection import release_connections
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionStatus, StepRun, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import StepRunUpdate
from forgeline.workflow.parameters import resolve_parameter_values
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.policies import SelectiveExecutionConfig


def new_execution_id() -> str:
    """A short random id (12 lowercase hex characters)."""
    return secrets.token_hex(6)


def create_execution(pipeline: Pipeline, overrides: Mapping[str, Any], store: MetadataStore,
                     work_dir: str, selective: SelectiveExecutionConfig | None = None,
                     status: ExecutionStatus = ExecutionStatus.EXECUTING) -> str:
    """Validate parameters and record a new execution (Executing, or Queued) with every step Pending."""
    source = None
    if selective is not None:
        source = store.get_execution(selective.source_execution_id)
        if source.pipeline_name != pipeline.name:
            raise ForgelineError(
                f"execution {source.id} ran pipeline {source.pipeline_name!r}, not {pipeline.name!r}: take the other "
                f"steps' outputs from an execution of {pipeline.name!r} "
                f"(`forgeline executions list --pipeline {pipeline.name}`)"
            )
        reused = steps_to_reuse(pipeline, selective, {r.name: r for r in store.list_step_runs(source.id)})
        overrides = {**source.parameters, **overrides}
    values = resolve_parameter_values(pipeline.parameters, overrides)
    version = store.save_pipeline_version(pipeline.name, pipeline.to_request())
    execution_id = new_execution_id()
    store.create_execution(
        execution_id=execution_id, pipeline_name=pipeline.name, pipeline_version=version.version,
        parameters=values, work_dir=work_dir, steps=[(s.name, s.step_type) for s in pipeline.steps],
        parent_execution_id=source.id if source else None, status=status,
    )
    if selective is not None and source is not None:
        for step in pipeline.steps:
            run = reused.get(step.name)
            if run is not None:
                store.update_step_run(execution_id, step.name, StepRunUpdate(
                    status=StepStatus.SUCCEEDED, outputs=run.outputs, properties=run.properties, metrics=run.metrics,
                    cache_hit=True, cache_source=source.id, started_at=run.started_at, ended_at=run.ended_at))
            elif step.name not in selective.selected_steps:
                store.update_step_run(execution_id, step.name, StepRunUpdate(
                    status=StepStatus.SKIPPED, failure_reason="not selected for this execution"))
    return execution_id


def steps_to_reuse(pipeline: Pipeline, selective: SelectiveExecutionConfig,
                   source_runs: Mapping[str, StepRun]) -> dict[str, StepRun]:
    """The source execution's runs of every step the selected steps need; refuse when one did not succeed."""
    unknown = [name for name in selective.selected_steps if name not in pipeline.graph.upstream]
    if unknown:
        raise ForgelineError(f"selected step(s) {', '.join(map(repr, unknown))} are not in pipeline "
                             f"{pipeline.name!r} (its steps: {', '.join(pipeline.graph.order)})")
    needed = pipeline.graph.ancestors(*selective.selected_steps) - set(selective.selected_steps)
    reused = {}
    for name in sorted(needed):
        run = source_runs.get(name)
        if run is None or run.status != StepStatus.SUCCEEDED:
            state = "does not exist" if run is None else f"is {run.status.value}"
            raise ForgelineError(
                f"cannot run only {', '.join(selective.selected_steps)}: they need the outputs of step {name!r}, "
                f"which {state} in execution {selective.source_execution_id}; select it too"
            )
        reused[name] = run
    return reused


def spawn_orchestrator(execution_id: str, settings: Settings, work_dir: str,
                       options: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Run the orchestrator in its own session so it outlives the caller; its log goes to the logs folder."""
    log_dir = settings.logs_dir / execution_id
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.to_env()}
    with open(log_dir / "orchestrator.log", "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "forgeline.engine.orchestrator", execution_id, *options],
            cwd=work_dir, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )


def fork_orchestrator(execution_id: str, settings: Settings, work_dir: str, options: Sequence[str] = ()) -> bool:
    """Run the orchestrator in a detached grandchild of this process, which has everything imported already.

    Saves an interpreter start and its imports (a few hundred ms). Only safe from a single-threaded process;
    returns False, forking nothing, when other threads run (a notebook kernel, a web server): the caller then
    spawns a fresh interpreter instead.
    """
    if threading.active_count() > 1 or not hasattr(os, "fork"):
        return False
    release_connections()  # idle SQLite connections would otherwise cross the fork
    if not database_files_closed(settings):
        return False
    log_dir = settings.logs_dir / execution_id
    log_dir.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    child = os.fork()
    if child:
        os.waitpid(child, 0)  # the intermediate child exits at once; the grandchild belongs to init
        return True
    code = 1
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        os.chdir(work_dir)
        log_fd = os.open(log_dir / "orchestrator.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.environ.update(settings.to_env())
        from forgeline.engine.orchestrator import main

        code = main([execution_id, *options])
    except BaseException:  # noqa: BLE001 - the grandchild must never return into the caller's code
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def database_files_closed(settings: Settings) -> bool:
    """Whether this process holds no open file of the SQLite metadata database (other databases: never safe).

    SQLite's per-process lock bookkeeping is copied by fork; a parent that later closes its connections
    would then delete the WAL files under the child's feet. Forking is only safe with none open.
    """
    if not settings.database_url.startswith("sqlite:///"):
        return False
    database = os.path.realpath(settings.database_url.removeprefix("sqlite:///"))
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return False
    for fd in descriptors:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed meanwhile (the listing's own descriptor, for one)
            continue
        if target.startswith(database):
            return False
    return True


def launch_orchestrator(execution_id: str, settings: Settings, work_dir: str, fork: bool,
                        options: Sequence[str] = ()) -> None:
    """Hand the execution to a detached orchestrator: forked when asked and safe, else a fresh process.

    ``options`` are extra orchestrator arguments (``--no-cache``).
    """
    if not (fork and fork_orchestrator(execution_id, settings, work_dir, options)):
        spawn_orchestrator(execution_id, settings, work_dir, options)


class Launcher(Protocol):
    """Starts the orchestrators of executions."""

    def launch(self, execution_id: str, work_dir: str, options: Sequence[str] = ()) -> None:
        """Start an orchestrator for this (already recorded) execution."""
        ...


@dataclasses.dataclass(frozen=True)
class ProcessLauncher:
    """An orchestrator per execution at once: forked from this process when ``fork`` and safe, else spawned."""

    settings: Settings
    fork: bool = True

    def launch(self, execution_id: str, work_dir: str, options: Sequence[str] = ()) -> None:
        """Fork or spawn the execution's orchestrator, detached from this process."""
        launch_orchestrator(execution_id, self.settings, work_dir, self.fork, options)


class QueueLauncher:
    """Runs Queued executions: claims them in the metadata store, at most ``max_running`` at once (a server)."""

    def __init__(self, runtime: Runtime, max_running: int) -> None:
        if max_running < 1:
            raise ForgelineError(f"max_running must be at least 1, not {max_running}")
        self.runtime = runtime
        self.max_running = max_running

    def run_once(self) -> list[str]:
        """Claim queued executions, oldest first, while fewer than max_running run; the ids given an orchestrator.

        Each claimed execution's orchestrator is spawned with the claim's epoch: it continues the claim
        instead of claiming again.
        """
        from forgeline.engine.orchestrator import EPOCH_OPTION

        store, settings = self.runtime.store, self.runtime.settings
        started: list[str] = []
        while True:
            claimed = store.claim_next_queued(owner_name(), settings.orchestrator_timeout_seconds, self.max_running)
            if claimed is None:
                return started
            execution_id, epoch = claimed
            self.launch(execution_id, store.get_execution(execution_id).work_dir, (f"{EPOCH_OPTION}={epoch}",))
            started.append(execution_id)

    def launch(self, execution_id: str, work_dir: str, options: Sequence[str] = ()) -> None:
        """Spawn the execution's orchestrator (a fresh process: a server runs threads, so it never forks)."""
        spawn_orchestrator(execution_id, self.runtime.settings, work_dir, options)


def start_execution(pipeline: Pipeline, overrides: Mapping[str, Any], settings: Settings | None = None,
                    selective: SelectiveExecutionConfig | None = None, fork: bool = True,
                    cache_lookups: bool = True, keep_jobs: bool | None = None,
                    runtime: Runtime | None = None, queued: bool = False) -> PipelineExecution:
    """Start ``pipeline`` with parameter ``overrides`` and return at once with the execution's handle.

    ``cache_lookups=False`` reuses no cached result in this run; its steps still record theirs.
    ``keep_jobs=True`` keeps succeeded steps' job folders (None: as ``Settings.keep_jobs`` says).
    ``runtime``: the backends an edge built (the CLI); else built here from ``settings`` (the Python API).
    ``queued=True`` records the execution Queued and starts nothing: a QueueLauncher (a server) runs it.
    """
    if os.environ.get(WORKER_ENV):
        raise ForgelineError(
            "pipeline.start() was called while a @step worker imported the pipeline file; "
            "put the call under `if __name__ == \"__main__\":`"
        )
    runtime = runtime or Runtime.at_edge(settings)
    settings, store = runtime.settings, runtime.store
    if keep_jobs is not None:
        settings = dataclasses.replace(settings, keep_jobs=keep_jobs)
    work_dir = os.getcwd()
    if queued:
        if not cache_lookups or keep_jobs is not None:
            raise ForgelineError("a queued execution runs with its launcher's settings: drop --no-cache and "
                                 "--keep-jobs (or keep_jobs), or start it without --queue")
        execution_id = create_execution(pipeline, overrides, store, work_dir, selective, ExecutionStatus.QUEUED)
        return PipelineExecution(execution_id, store, settings)
    execution_id = create_execution(pipeline, overrides, store, work_dir, selective)
    store.close()  # no database file may be open across a fork; the handle reconnects on its next read
    options: tuple[str, ...] = ()
    if not cache_lookups:
        from forgeline.engine.orchestrator import NO_CACHE_FLAG

        options = (NO_CACHE_FLAG,)
    launch_orchestrator(execution_id, settings, work_dir, fork, options)
    return PipelineExecution(execution_id, store, settings)


def plan_execution(pipeline: Pipeline, overrides: Mapping[str, Any],
                   settings: Settings | None = None) -> list[StepPlan]:
    """What a run with these parameters would reuse and what it would run (nothing is started, no store created)."""
    settings = settings or Settings.from_env()
    try:
        runtime = Runtime.build(settings, create=False)
    except StoreNotFoundError:  # nothing has run here yet: an empty store in memory, all misses
        runtime = Runtime.build(settings, store=SqlMetadataStore("sqlite://"))
    return plan_pipeline(pipeline, overrides, runtime.store, runtime.artifacts, settings, os.getcwd())


def upsert_pipeline(pipeline: Pipeline, settings: Settings | None = None) -> dict[str, Any]:
    """Store ``pipeline``'s definition as its newest version (a new version only when it changed)."""
    store = Runtime.at_edge(settings).store
    try:
        version = store.save_pipeline_version(pipeline.name, pipeline.to_request())
    finally:
        store.close()
    return {"PipelineArn": pipeline.name, "PipelineVersion": version.version}


def describe_pipeline(name: str, settings: Settings | None = None) -> dict[str, Any]:
    """The stored pipeline called ``name``: its newest definition (JSON text), version and times."""
    store = Runtime.at_edge(settings).store
    try:
        version = store.get_pipeline_version(name)
        summary = next((p for p in store.list_pipelines() if p.name == name), None)
    finally:
        store.close()
    return {"PipelineArn": name, "PipelineName": name, "PipelineDefinition": json.dumps(version.definition),
            "PipelineVersion": version.version,
            "CreationTime": summary.created_at if summary else version.created_at,
            "LastModifiedTime": version.created_at}


def list_pipeline_executions(name: str, settings: Settings | None = None, limit: int = 50) -> dict[str, Any]:
    """The newest executions of pipeline ``name``, in SageMaker's ``PipelineExecutionSummaries`` shape."""
    store = Runtime.at_edge(settings).store
    try:
        records = store.list_executions(name, limit)
    finally:
        store.close()
    return {"PipelineExecutionSummaries": [
        {"PipelineExecutionArn": r.id, "PipelineExecutionStatus": r.status.value, "StartTime": r.created_at,
         "PipelineVersion": r.pipeline_version, "PipelineExecutionFailureReason": r.failure_reason}
        for r in records
    ]}
