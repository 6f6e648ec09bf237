"""The orchestrator loop: ready steps to the executor, transitions to the metadata store, until done.

Runs in its own process (``python -m forgeline.engine.orchestrator <execution-id>``) so an execution
outlives the process that started it; all state it needs is read from the metadata store.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from typing import Any

from forgeline.config import Settings
from forgeline.engine import registration  # noqa: F401 - registers RegisterModel's inline runner
from forgeline.engine.adoption import settle_open_attempts
from forgeline.engine.attempts import AttemptLedger
from forgeline.engine.caching import CacheKey, StepCache, compute_cache_key
from forgeline.engine.fingerprint import Fingerprinter
from forgeline.engine.housekeeping import discard_empty_jobs_folder, discard_job_folder
from forgeline.engine.inline import InlineContext, RunningPipeline, is_inline, run_inline
from forgeline.engine.jobspecs import JobContext, build_job_spec
from forgeline.engine.liveness import Heartbeat
from forgeline.engine.loops import LoopRunner
from forgeline.engine.resolve import ResolutionContext, evaluate, render, resolve
from forgeline.engine.state import ExecutionState, now
from forgeline.errors import ForgelineError
from forgeline.executors.base import Executor, JobHandle
from forgeline.executors.local import LocalExecutor
from forgeline.jobs.function_loading import FunctionLoader
from forgeline.jobs.spec import JobResult, JobSpec, JobStatus
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionStatus, MetricPoint, StepRun, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.steps import ConditionStep, FailStep, ForEach, JobStep, Step

log = logging.getLogger("forgeline.orchestrator")

STOP_POLL_SECONDS = 0.1
STOP_GRACE_SECONDS = 10.0
BLOCKING = (StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.STOPPED)


@dataclass
class RunningJob:
    """A submitted job attempt the loop waits for."""

    step: Step
    spec: JobSpec
    handle: JobHandle | None  # None: adopted from a dead orchestrator, already ended
    attempt: int  # its first attempt; spot restarts open later ones (see Orchestrator.attempts)
    cache_key: CacheKey | None


def property_document(run: StepRun) -> dict[str, Any]:
    """What expressions see of a finished step: its outputs, properties and metrics."""
    return {"outputs": dict(run.outputs), "metrics": dict(run.metrics), **run.properties}


class Orchestrator:
    """Drives one execution to a terminal status."""

    def __init__(self, execution_id: str, settings: Settings, store: MetadataStore,
                 artifacts: ArtifactStore, executor: Executor | None = None, cache_lookups: bool = True) -> None:
        self.store = store
        self.cache_lookups = cache_lookups  # False (run --no-cache): results are still recorded in the cache
        self.settings = settings
        self.artifacts = artifacts
        self.record = store.get_execution(execution_id)
        self.id = self.record.id
        version = store.get_pipeline_version(self.record.pipeline_name, self.record.pipeline_version)
        self.pipeline = Pipeline.from_definition(version.definition)
        self.max_parallel = self.pipeline.parallelism_config.max_parallel_steps or os.cpu_count() or 1
        self.executor = executor or LocalExecutor(artifacts, self.max_parallel)
        self.running: dict[Future[JobResult], RunningJob] = {}
        self.delayed: list[tuple[float, str]] = []
        self.resolution = ResolutionContext(
            execution_id=self.id, pipeline_name=self.record.pipeline_name,
            start_datetime=self.record.started_at or self.record.created_at,
            parameters=self.record.parameters, load_return=self._load_return,
            find_latest_approved=store.latest_approved_model_package,
            find_model_package=store.get_model_package,
        )
        self.state = ExecutionState(store, self.id, self.pipeline, self.resolution)
        self.fail_message: str | None = None
        self.status, self.steps = self.state.status, self.state.steps  # shared, never rebound
        self.loops = LoopRunner(self.state)
        runs = store.list_step_runs(self.id)
        for run in runs:
            step = self.steps.get(run.name)
            if isinstance(step, ForEach) and "items" in run.properties:
                self.loops.restore(step, run.properties["items"])
        for run in runs:
            status = run.status
            if not status.is_terminal:  # a resumed execution keeps what ended, failures included
                status = StepStatus.PENDING
            elif status == StepStatus.FAILED and isinstance(self.steps.get(run.name), FailStep):
                self.fail_message = run.failure_reason
            self.status[run.name] = status
            if status == StepStatus.SUCCEEDED:
                self.resolution.step_properties[run.name] = property_document(run)
        self.attempts = AttemptLedger(store, self.id, runs)
        self.function_loader = FunctionLoader()
        self.cache = StepCache(store, artifacts)
        self.fingerprinter = Fingerprinter(store)
        self.stopping = False
        self._last_stop_poll = 0.0
        self.heartbeat = Heartbeat(store, self.id, settings)

    def _load_return(self, uri: str) -> Any:
        # the loader finds classes defined in user files, which plain pickle cannot import
        return self.function_loader.loads(self.artifacts.read_bytes(uri))

    def run(self) -> ExecutionStatus:
        """Run the loop to the end and record the execution's final status."""
        self.heartbeat.start()
        try:
            for adopted in settle_open_attempts(self.store, self.id, self.executor, self._spec_of):
                step = self.steps[adopted.step_name]
                job = RunningJob(step, adopted.spec, None, adopted.attempt, self._cache_key(step, adopted.spec))
                self._conclude(job, adopted.result)
            self._loop()
            return self._finalize()
        except Exception as exc:
            log.exception("orchestrator failed")
            self._stop_running()
            reason = f"orchestrator error: {type(exc).__name__}: {exc}"
            self.store.update_execution(self.id, status=ExecutionStatus.FAILED, failure_reason=reason,
                                        ended_at=now())
            return ExecutionStatus.FAILED
        finally:
            self.heartbeat.stop()
            self.executor.shutdown()

    def request_stop(self) -> None:
        """Stop from inside the orchestrator process (SIGTERM handler)."""
        self.stopping = True

    def _loop(self) -> None:
        while True:
            self._poll_stop()
            if not self.stopping and self.fail_message is None:
                self._skip_blocked()
                self.loops.complete()
                started = self._start_ready()
                if started:
                    continue
            if not self.running and (not self.delayed or self.stopping or self.fail_message is not None):
                break
            timeout = STOP_POLL_SECONDS
            if self.delayed:
                timeout = max(0.0, min(timeout, min(t for t, _ in self.delayed) - time.monotonic()))
            if self.running:
                done, _ = wait(list(self.running), timeout=timeout, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(future)
            else:
                time.sleep(timeout)

    def _ready(self) -> list[str]:
        backing_off = {name for due, name in self.delayed if due > time.monotonic()}  # retries not due yet
        ready = []
        for name in self.state.graph.order:
            if self.status[name] != StepStatus.PENDING or name in backing_off:
                continue
            if all(self.status.get(up) == StepStatus.SUCCEEDED for up in self.state.graph.upstream[name]) \
                    and self.loops.may_start(name):
                ready.append(name)
        return ready

    def _start_ready(self) -> bool:
        started = False
        for name in self._ready():
            step = self.steps[name]
            if isinstance(step, JobStep) and len(self.running) >= self.max_parallel \
                    or not self.loops.may_start(name):  # earlier starts in this round may have used the slot
                continue
            self.delayed = [(t, n) for t, n in self.delayed if n != name]
            started = True
            if isinstance(step, ConditionStep):
                self._run_condition(step)
            elif isinstance(step, ForEach):
                self.loops.start(step)
            elif isinstance(step, FailStep):
                self._run_fail(step)
                return True
            elif is_inline(step):
                self._run_inline(step)
            else:
                self._submit(step)
        return started

    def _skip_blocked(self) -> None:
        changed = True
        while changed:
            changed = False
            for name in self.state.graph.order:
                if self.status[name] != StepStatus.PENDING:
                    continue
                blocked = [up for up in sorted(self.state.graph.upstream[name]) if self.status.get(up) in BLOCKING]
                if blocked:
                    up = blocked[0]
                    reason = f"upstream step {up!r} {self.status[up].value.lower()}"
                    self.state.set(name, StepStatus.SKIPPED, failure_reason=reason)
                    changed = True

    def _run_condition(self, step: ConditionStep) -> None:
        started = now()
        try:
            outcome = all(evaluate(c, self.resolution) for c in step.conditions)
        except ForgelineError as exc:
            self.state.set(step.name, StepStatus.FAILED, started_at=started,
                      failure_reason=f"condition could not be evaluated: {exc}")
            return
        self.resolution.step_properties[step.name] = {"outcome": outcome}
        self.state.set(step.name, StepStatus.SUCCEEDED, started_at=started, properties={"outcome": outcome})
        not_chosen = step.else_steps if outcome else step.if_steps
        for skipped in not_chosen:
            if self.status[skipped.name] == StepStatus.PENDING:
                self.state.set(skipped.name, StepStatus.SKIPPED, started_at=None,
                          failure_reason=f"not chosen: {step.name} evaluated to {str(outcome).lower()}")

    def _run_fail(self, step: FailStep) -> None:
        started = now()
        try:
            message = render(resolve(step.error_message, self.resolution))
        except ForgelineError as exc:
            message = f"FailStep {step.name!r} message could not be resolved: {exc}"
        self.fail_message = message or f"FailStep {step.name!r} was reached"
        self.state.set(step.name, StepStatus.FAILED, started_at=started, failure_reason=self.fail_message)

    def _run_inline(self, step: Step) -> None:
        started = now()
        running = RunningPipeline(self.pipeline.name, dict(self.steps), self.state.graph)
        ctx = InlineContext(self.store.get_execution(self.id), running, self.store, self.artifacts,
                            self.resolution, self.settings)
        try:
            result = run_inline(step, ctx)
        except ForgelineError as exc:
            self.state.set(step.name, StepStatus.FAILED, started_at=started, failure_reason=str(exc))
            return
        self.resolution.step_properties[step.name] = {"outputs": dict(result.outputs), **result.properties}
        self.state.set(step.name, StepStatus.SUCCEEDED, started_at=started, outputs=dict(result.outputs),
                  properties=result.properties)

    def _submit(self, step: Step) -> None:
        first_attempt = self.attempts.latest(step.name) == 0
        ctx = JobContext(self.id, self.attempts.latest(step.name) + 1, self.settings, self.artifacts,
                         self.resolution, self.record.work_dir)
        try:
            spec = build_job_spec(step, ctx)
        except ForgelineError as exc:
            self.state.set(step.name, StepStatus.FAILED, started_at=now(),
                      failure_reason=f"inputs could not be resolved: {exc}")
            return
        key = self._cache_key(step, spec)
        if key is not None and self.cache_lookups and self._reuse(step, key):
            return
        attempt = self.attempts.start(step.name, spec.log_path)
        self.status[step.name] = StepStatus.EXECUTING
        fields: dict[str, Any] = {"started_at": now()} if first_attempt else {}
        self.store.update_step_run(self.id, step.name, status=StepStatus.EXECUTING, **fields)
        handle = self.executor.submit(spec, on_start=self.attempts.pid_recorder(step.name),
                                      on_restart=self.attempts.restart_recorder(step.name, spec.log_path))
        self.running[handle.future] = RunningJob(step, spec, handle, attempt, key)

    def _cache_key(self, step: Step, spec: JobSpec) -> CacheKey | None:
        config = getattr(step, "cache_config", None)
        if config is None or not config.enable_caching:
            return None
        try:
            return compute_cache_key(step, spec, self.record.parameters, self.record.work_dir, self.fingerprinter)
        except ForgelineError as exc:  # e.g. a missing input: the job itself reports it clearly
            log.info("no cache key for step %s: %s", step.name, exc)
            return None

    def _reuse(self, step: Step, key: CacheKey) -> bool:
        config = getattr(step, "cache_config", None)
        entry = self.cache.lookup(key, config.expires_after if config else None)
        if entry is None:
            return False
        self.resolution.step_properties[step.name] = {"outputs": dict(entry.outputs), **entry.properties}
        metrics = entry.properties.get("metrics", {})
        self.state.set(step.name, StepStatus.SUCCEEDED, started_at=now(), outputs=dict(entry.outputs),
                  properties=entry.properties, metrics=metrics, cache_hit=True, cache_source=entry.execution_id)
        return True

    def _spec_of(self, step_name: str, attempt: int) -> JobSpec | None:
        """The JobSpec an earlier orchestrator ran for this attempt (rebuilt: specs are pure), None if none."""
        step = self.steps.get(step_name)
        if not isinstance(step, JobStep):
            return None
        try:
            return build_job_spec(step, JobContext(self.id, attempt, self.settings, self.artifacts,
                                                   self.resolution, self.record.work_dir))
        except ForgelineError:
            return None

    def _finish(self, future: Future[JobResult]) -> None:
        job = self.running.pop(future)
        self._conclude(job, future.result())

    def _conclude(self, job: RunningJob, result: JobResult) -> None:
        self.heartbeat.owned_record()  # a job a newer orchestrator's takeover ended must not be recorded here
        name = job.step.name
        attempt = self.attempts.latest(name)  # later than job.attempt after spot restarts
        metrics = self._record_metrics(name, job.attempt, result)
        if result.status == JobStatus.SUCCEEDED:
            self.store.finish_attempt(self.id, name, attempt, status=StepStatus.SUCCEEDED)
            properties = {**job.spec.static_properties, **result.properties}
            if metrics:
                properties["metrics"] = metrics
            self.resolution.step_properties[name] = {"outputs": dict(result.outputs), **properties}
            self.state.set(name, StepStatus.SUCCEEDED, outputs=dict(result.outputs), properties=properties,
                      metrics=metrics, failure_reason=None)
            if job.cache_key is not None:
                self.cache.record(job.cache_key, self.record.pipeline_name, job.step, self.id,
                                  result.outputs, properties)
            discard_job_folder(self.settings, self.id, name)
            return
        status = StepStatus.STOPPED if result.status == JobStatus.STOPPED else StepStatus.FAILED
        kind = result.failure_kind.value if result.failure_kind else None
        self.store.finish_attempt(self.id, name, attempt, status=status, failure_kind=kind,
                                  failure_reason=result.failure_reason)
        policy = self.attempts.retry_policy(job.step, kind)
        if status == StepStatus.FAILED and policy is not None and not self.stopping:
            self.status[name] = StepStatus.PENDING
            self.delayed.append((time.monotonic() + policy.delay_before(attempt + 1), name))
            return
        self.state.set(name, status, failure_reason=result.failure_reason, metrics=metrics)

    def _record_metrics(self, step_name: str, first_attempt: int, result: JobResult) -> dict[str, float]:
        """Store the metric series of a finished job, each sample under its start's attempt; final values."""
        if not result.metrics:
            return {}
        self.store.add_metric_points([
            MetricPoint(execution_id=self.id, step_name=step_name, attempt=first_attempt + s.attempt - 1,
                        name=s.name, value=s.value, timestamp=s.timestamp, seq=s.seq)
            for s in result.metrics
        ])
        return {s.name: s.value for s in result.metrics}

    def _poll_stop(self) -> None:
        if time.monotonic() - self._last_stop_poll < STOP_POLL_SECONDS and not self.stopping:
            return
        self._last_stop_poll = time.monotonic()
        if not self.stopping and self.heartbeat.owned_record().status == ExecutionStatus.STOPPING:
            self.stopping = True
        if self.stopping:
            self._stop_running()

    def _stop_running(self) -> None:
        for job in list(self.running.values()):
            name = job.step.name
            if self.status.get(name) != StepStatus.STOPPING:
                self.status[name] = StepStatus.STOPPING
                self.store.update_step_run(self.id, name, status=StepStatus.STOPPING)
                if job.handle is not None:
                    job.handle.stop(STOP_GRACE_SECONDS)

    def _finalize(self) -> ExecutionStatus:
        self.heartbeat.owned_record()
        self.loops.close_unfinished(self.stopping)
        for name in self.state.graph.order:
            if self.status[name] == StepStatus.PENDING:
                why = "stopped" if self.stopping else "failed"
                self.state.set(name, StepStatus.SKIPPED, failure_reason=f"execution {why} before this step started")
        failed = [n for n in self.state.graph.order if self.status[n] == StepStatus.FAILED]
        reason: str | None = None
        if self.stopping:
            status = ExecutionStatus.STOPPED
        elif self.fail_message is not None:
            status, reason = ExecutionStatus.FAILED, self.fail_message
        elif failed:
            runs = {r.name: r for r in self.store.list_step_runs(self.id)}
            status = ExecutionStatus.FAILED
            reason = "; ".join(f"step {n!r} failed: {runs[n].failure_reason}" for n in failed)
        else:
            status = ExecutionStatus.SUCCEEDED
        self.store.update_execution(self.id, status=status, failure_reason=reason, ended_at=now())
        discard_empty_jobs_folder(self.settings, self.id)
        return status


NO_CACHE_FLAG = "--no-cache"
"""Orchestrator argument: reuse no cached result in this run (results are still recorded)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the orchestrator process."""
    args = sys.argv[1:] if argv is None else argv
    cache_lookups = NO_CACHE_FLAG not in args
    args = [arg for arg in args if arg != NO_CACHE_FLAG]
    if len(args) != 1:
        print(f"usage: python -m forgeline.engine.orchestrator <execution-id> [{NO_CACHE_FLAG}]", file=sys.stderr)
        return 2
    # force: a forked orchestrator must not write into handlers its parent process configured
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    settings = Settings.from_env()
    store = SqlMetadataStore(settings.database_url)
    orchestrator = Orchestrator(args[0], settings, store, ArtifactStore(settings.artifact_root),
                                cache_lookups=cache_lookups)
    signal.signal(signal.SIGTERM, lambda *_: orchestrator.request_stop())
    status = orchestrator.run()
    return 0 if status == ExecutionStatus.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
