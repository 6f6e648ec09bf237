"""Start an execution: check parameters, store the definition, hand the run to a detached orchestrator.

Who starts the orchestrator is a Launcher: ProcessLauncher forks or spawns one per execution at once (the CLI
and the Python API); QueueLauncher claims Queued executions from the metadata store, at most ``max_running``
at a time, and spawns an orchestrator for each (a long-running server).
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from forgeline.config import AUTO_RESUME_ENV, Settings
from forgeline.engine.code_snapshot import save_code_snapshot
from forgeline.engine.end_notice import EndNotice, open_end_notice
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.liveness import check_orchestrator, heartbeat_interval
from forgeline.engine.lost import claim_lost, end_claimed, find_lost, never_started, stopped_reason
from forgeline.engine.ownership import owner_name
from forgeline.engine.plan import StepPlan, plan_pipeline
from forgeline.engine.runtime import Runtime
from forgeline.engine.stored import store_pipeline
from forgeline.errors import ForgelineError
from forgeline.jobs.function import WORKER_ENV
from forgeline.jobs.function_fork import prepare_offered
from forgeline.startup import bulk_imports
from forgeline.store.metadata.connection import release_connections
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionStatus, StepRun, StepStatus
from forgeline.store.metadata.updates import StepRunUpdate
from forgeline.workflow.parameters import resolve_parameter_values
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.policies import SelectiveExecutionConfig

log = logging.getLogger("forgeline.launcher")

MAX_STARTS = 3
"""How often a queue launcher starts an execution's orchestrator again after losing it, before failing it."""


def os_user() -> str | None:
    """The name of the OS user running this process (None when the system cannot tell)."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return None


def new_execution_id() -> str:
    """A short random id (12 lowercase hex characters)."""
    return secrets.token_hex(6)


def create_execution(pipeline: Pipeline, overrides: Mapping[str, Any], store: MetadataStore,
                     work_dir: str, selective: SelectiveExecutionConfig | None = None,
                     status: ExecutionStatus = ExecutionStatus.EXECUTING, *, code_snapshot: str | None = None,
                     started_by: dict[str, Any] | None = None, version: int | None = None) -> str:
    """Validate parameters and record a new execution (Executing, or Queued) with every step Pending.

    ``code_snapshot``: the code it runs (recorded on the version too); ``version``: a stored version to run
    (None: store the definition, a new version only when it changed).
    """
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
    if version is None:
        version = store.save_pipeline_version(pipeline.name, pipeline.to_request(), code_snapshot).version
    execution_id = new_execution_id()
    store.create_execution(
        execution_id=execution_id, pipeline_name=pipeline.name, pipeline_version=version,
        parameters=values, work_dir=work_dir, steps=[(s.name, s.step_type) for s in pipeline.steps],
        parent_execution_id=source.id if source else None, status=status, code_snapshot=code_snapshot,
        started_by=started_by,
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
            cwd=launch_folder(work_dir, settings), env=env, stdin=subprocess.DEVNULL, stdout=log_file,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )


def fork_orchestrator(execution_id: str, settings: Settings, work_dir: str, options: Sequence[str] = (),
                      runtime: Runtime | None = None) -> EndNotice | None:
    """Run the orchestrator in a detached grandchild of this process, which has everything imported already.

    Saves an interpreter start and its imports (a few hundred ms). Only safe from a single-threaded process;
    returns None, forking nothing, when other threads run (a notebook kernel, a web server): the caller then
    spawns a fresh interpreter instead. ``runtime``: this process's, on the database of ``settings``, which the
    orchestrator then uses as it is (its store opened and checked, the statements it compiled) instead of
    building its own from the environment. Returns the orchestrator's end notice (see engine/end_notice.py).
    """
    if threading.active_count() > 1 or not hasattr(os, "fork"):
        return None
    release_connections()  # idle SQLite connections would otherwise cross the fork
    if not database_files_closed(settings.database_url):
        return None
    sys.stdout.flush()
    sys.stderr.flush()
    notice, notice_fd = open_end_notice()
    child = os.fork()
    if child:
        os.close(notice_fd)
        os.waitpid(child, 0)  # the intermediate child exits at once; the grandchild belongs to init
        return notice
    code = 1
    try:
        notice.close()
        os.setsid()
        if os.fork():
            os._exit(0)
        code = become_orchestrator(execution_id, settings, work_dir, options, runtime, notice_fd)
    except BaseException:  # noqa: BLE001 - the grandchild must never return into the caller's code
        import traceback

        traceback.print_exc()
    finally:
        os._exit(code)


def become_orchestrator(execution_id: str, settings: Settings, work_dir: str, options: Sequence[str],
                        runtime: Runtime | None, end_notice_fd: int | None) -> int:
    """Run the execution's orchestrator in this (detached, forked) process until it ends; its exit code.

    Standard input from /dev/null, output and errors to the execution's orchestrator log, the working folder
    and the settings' variables as a spawned orchestrator has them; a @step worker on offer here (forked by the
    process that started the execution) is told to serve it as one it spawned would. The caller exits with the
    code returned.
    """
    log = settings.logs_dir / execution_id / "orchestrator.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    folder = launch_folder(work_dir, settings)
    prepare_offered(folder, str(log), settings.to_env())
    os.chdir(folder)
    log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(null_fd)
    os.close(log_fd)
    os.environ.update(settings.to_env())
    with bulk_imports():
        from forgeline.engine.orchestrator import main

    return main([execution_id, *options], runtime, end_notice_fd=end_notice_fd)


def launch_folder(work_dir: str, settings: Settings) -> str:
    """Where an orchestrator starts: the execution's working folder, or forgeline's home once that folder is gone
    (its code runs from the snapshot; only relative data paths needed the folder)."""
    return work_dir if os.path.isdir(work_dir) else str(settings.home)


def database_files_closed(database_url: str) -> bool:
    """Whether this process holds no open file of this SQLite metadata database (other databases: never safe).

    SQLite's per-process lock bookkeeping is copied by fork; a parent that later closes its connections
    would then delete the WAL files under the child's feet. Forking is only safe with none open.
    """
    if not database_url.startswith("sqlite:///"):
        return False
    database = os.path.realpath(database_url.removeprefix("sqlite:///"))
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
                        options: Sequence[str] = (), runtime: Runtime | None = None) -> EndNotice | None:
    """Hand the execution to a detached orchestrator: forked when asked and safe, else a fresh process.

    ``options`` are extra orchestrator arguments (``--no-cache``); ``runtime``: see fork_orchestrator.
    Returns the end notice of a forked orchestrator (None: spawned, watched through the store alone).
    """
    notice = fork_orchestrator(execution_id, settings, work_dir, options, runtime) if fork else None
    if notice is None:
        spawn_orchestrator(execution_id, settings, work_dir, options)
    return notice


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
    """Runs Queued executions: claims them in the metadata store, at most ``max_running`` at once (a server).

    Its orchestrators are spawned in sessions of their own, so they outlive the launcher (a server killed
    with SIGKILL included). It also watches for executions whose orchestrator is lost and resumes or ends them,
    as ``Settings.auto_resume`` says (``settle_lost``). Any number of launchers, in any number of processes, may
    share one database: each execution is claimed by one of them only.
    """

    def __init__(self, runtime: Runtime, max_running: int) -> None:
        if max_running < 1:
            raise ForgelineError(f"max_running must be at least 1, not {max_running}")
        self.runtime = runtime
        self.max_running = max_running
        self.owner = owner_name()
        self._children: dict[str, subprocess.Popen[bytes]] = {}  # the orchestrators it spawned, until they end
        self._starts: dict[str, int] = {}  # how often each lost, never-started execution was launched again

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.5) -> None:
        """Claim and launch queued executions and settle lost ones until ``stop`` is set (a server's thread).

        Lost orchestrators are looked for every heartbeat interval. A failing store is logged and tried
        again at the next poll; only ``stop`` ends the loop.
        """
        sweep_every = heartbeat_interval(self.runtime.settings)
        next_sweep = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + sweep_every
                    self.settle_lost()
                self.run_once()
            except Exception:  # noqa: BLE001 - a server's launcher outlives a store outage
                log.exception("queue launcher: trying again in %g s", poll_seconds)
            self._reap()
            stop.wait(poll_seconds)

    def run_once(self) -> list[str]:
        """Claim queued executions, oldest first, while fewer than max_running run; the ids given an orchestrator.

        Each claimed execution's orchestrator is spawned with the claim's epoch: it continues the claim
        instead of claiming again.
        """
        store, settings = self.runtime.store, self.runtime.settings
        started: list[str] = []
        while True:
            claimed = store.claim_next_queued(self.owner, settings.orchestrator_timeout_seconds, self.max_running)
            if claimed is None:
                return started
            execution_id, epoch = claimed
            self._launch_claimed(execution_id, store.get_execution(execution_id).work_dir, epoch)
            started.append(execution_id)

    def settle_lost(self) -> list[str]:
        """Resume or end the executions whose orchestrator is lost; the ids this launcher claimed to do so.

        A Stopping one ends Stopped. An Executing one is resumed when ``Settings.auto_resume`` is on, else it
        ends Failed saying why and how to retry it; one that no orchestrator ran since its claim (a launcher
        died before starting it) is launched again either way. An execution this launcher has started again
        MAX_STARTS times and lost each time ends Failed instead (an orchestrator that cannot run it).
        """
        store, settings = self.runtime.store, self.runtime.settings
        claimed = []
        for record in find_lost(store, settings):
            if never_started(record) and self._starting(record.id):
                continue  # its orchestrator is still on its way up (a loaded machine may take a while)
            epoch = claim_lost(store, record, self.owner, settings.orchestrator_timeout_seconds)
            if epoch is None:
                continue  # another launcher or a command took it over first
            claimed.append(record.id)
            silent = check_orchestrator(record, settings).silent_seconds
            if record.status == ExecutionStatus.STOPPING:
                self._end(record.id, epoch, ExecutionStatus.STOPPED, stopped_reason(silent))
                continue
            starts = self._starts.get(record.id, 0)
            if starts >= MAX_STARTS:
                self._end(record.id, epoch, ExecutionStatus.FAILED,
                          f"its orchestrator was started again {starts} times and lost each time; see "
                          f"{settings.logs_dir / record.id / 'orchestrator.log'}")
            elif settings.auto_resume or never_started(record):
                log.info("queue launcher: execution %s lost its orchestrator %.0f s ago; resuming it", record.id,
                         silent)
                self._starts[record.id] = starts + 1
                self._launch_claimed(record.id, record.work_dir, epoch)
            else:
                self._end(record.id, epoch, ExecutionStatus.FAILED,
                          f"its orchestrator was lost {silent:.0f} s ago and {AUTO_RESUME_ENV} is off; "
                          f"`forgeline executions retry {record.id}` reruns the steps that did not succeed")
        return claimed

    def launch(self, execution_id: str, work_dir: str, options: Sequence[str] = ()) -> None:
        """Spawn the execution's orchestrator (a fresh process: a server runs threads, so it never forks)."""
        self._children[execution_id] = spawn_orchestrator(execution_id, self.runtime.settings, work_dir, options)

    def _launch_claimed(self, execution_id: str, work_dir: str, epoch: int) -> None:
        from forgeline.engine.orchestrator import EPOCH_OPTION

        self.launch(execution_id, work_dir, (f"{EPOCH_OPTION}={epoch}",))
        log.info("queue launcher: execution %s launched (epoch %d, orchestrator pid %d)", execution_id, epoch,
                 self._children[execution_id].pid)

    def _end(self, execution_id: str, epoch: int, status: ExecutionStatus, reason: str) -> None:
        log.warning("queue launcher: execution %s ends %s: %s", execution_id, status.value, reason)
        end_claimed(self.runtime, execution_id, epoch, status, reason)
        self._starts.pop(execution_id, None)

    def _starting(self, execution_id: str) -> bool:
        """Whether this launcher spawned the execution's orchestrator and that process still runs."""
        child = self._children.get(execution_id)
        return child is not None and child.poll() is None

    def _reap(self) -> None:
        """Collect the exit status of orchestrators that ended, so none lingers as a zombie."""
        self._children = {key: child for key, child in self._children.items() if child.poll() is None}


@dataclasses.dataclass(frozen=True)
class RecordedStart:
    """An execution recorded Executing whose orchestrator is yet to be launched: what launching it takes."""

    execution_id: str
    runtime: Runtime
    work_dir: str
    options: tuple[str, ...]


def start_execution(pipeline: Pipeline, overrides: Mapping[str, Any], settings: Settings | None = None,
                    selective: SelectiveExecutionConfig | None = None, fork: bool = True,
                    cache_lookups: bool = True, keep_jobs: bool | None = None,
                    runtime: Runtime | None = None, queued: bool = False,
                    started_by: Mapping[str, Any] | None = None) -> PipelineExecution:
    """Start ``pipeline`` with parameter ``overrides`` and return at once with the execution's handle.

    ``cache_lookups=False`` reuses no cached result in this run; its steps still record theirs.
    ``keep_jobs=True`` keeps succeeded steps' job folders (None: as ``Settings.keep_jobs`` says).
    ``runtime``: the backends an edge built (the CLI); else built here from ``settings`` (the Python API).
    ``queued=True`` records the execution Queued and starts nothing: a QueueLauncher (a server) runs it.
    ``started_by``: who started it, as recorded (None: the Python API, ``{"kind": "python"}``); the OS user
    name is added as ``actor``.
    """
    recorded = record_start(pipeline, overrides, settings, selective, cache_lookups, keep_jobs, runtime, queued,
                            started_by)
    if queued:
        return PipelineExecution(recorded.execution_id, recorded.runtime)
    notice = launch_orchestrator(recorded.execution_id, recorded.runtime.settings, recorded.work_dir, fork,
                                 recorded.options, runtime=recorded.runtime)
    return PipelineExecution(recorded.execution_id, recorded.runtime, end_notice=notice)


def record_start(pipeline: Pipeline, overrides: Mapping[str, Any], settings: Settings | None = None,
                 selective: SelectiveExecutionConfig | None = None, cache_lookups: bool = True,
                 keep_jobs: bool | None = None, runtime: Runtime | None = None, queued: bool = False,
                 started_by: Mapping[str, Any] | None = None) -> RecordedStart:
    """What ``start_execution`` does before it launches the orchestrator: check, snapshot the code and record the
    execution (Executing, or Queued).

    Its store stays open: the warm launcher's child goes on to orchestrate in this process on the same
    connection, and ``fork_orchestrator`` closes every connection itself before it forks.
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
    if queued and (not cache_lookups or keep_jobs is not None):
        raise ForgelineError("a queued execution runs with its launcher's settings: drop --no-cache and "
                             "--keep-jobs (or keep_jobs), or start it without --queue")
    snapshot = save_code_snapshot(runtime, pipeline, work_dir)
    starter = {"kind": "python", **(started_by or {}), "actor": os_user()}
    status = ExecutionStatus.QUEUED if queued else ExecutionStatus.EXECUTING
    execution_id = create_execution(pipeline, overrides, store, work_dir, selective, status,
                                    code_snapshot=snapshot, started_by=starter)
    if queued:
        return RecordedStart(execution_id, runtime, work_dir, ())
    options: tuple[str, ...] = ()
    if not cache_lookups:
        from forgeline.engine.orchestrator import NO_CACHE_FLAG

        options = (NO_CACHE_FLAG,)
    return RecordedStart(execution_id, dataclasses.replace(runtime, settings=settings), work_dir, options)


def plan_execution(pipeline: Pipeline, overrides: Mapping[str, Any], settings: Settings | None = None,
                   runtime: Runtime | None = None) -> list[StepPlan]:
    """What a run with these parameters would reuse and what it would run (nothing is started, no store created).

    ``runtime``: the backends an edge built; else read-only ones from ``settings`` (see Runtime.for_reading).
    """
    runtime = runtime or Runtime.for_reading(settings)
    return plan_pipeline(pipeline, overrides, runtime.store, runtime.artifacts, runtime.settings, os.getcwd())


def upsert_pipeline(pipeline: Pipeline, settings: Settings | None = None) -> dict[str, Any]:
    """Store ``pipeline``'s definition as its newest version (a new version only when it changed) with a snapshot
    of its code from the current folder, so a schedule or the API can start it later (``start_stored``)."""
    runtime = Runtime.at_edge(settings)
    try:
        stored = store_pipeline(runtime, pipeline, os.getcwd())
    finally:
        runtime.store.close()
    return {"PipelineArn": pipeline.name, "PipelineVersion": stored.version}


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
