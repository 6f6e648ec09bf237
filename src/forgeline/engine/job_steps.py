"""JobSteps: the steps an execution runs as jobs — submitted to the executor, reused from the cache, concluded.

Which job to start and whether a failed one runs again is the scheduler's decision; this module turns those
decisions into job specs, executor calls and transitions.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from forgeline.config import Settings
from forgeline.engine.attempts import AttemptLedger
from forgeline.engine.caching import CacheKey, StepCache, compute_cache_key
from forgeline.engine.fingerprint import Fingerprinter
from forgeline.engine.housekeeping import discard_job_folder
from forgeline.engine.jobspecs import JobContext, build_job_spec
from forgeline.engine.scheduler import Retry
from forgeline.engine.state import ExecutionState, now
from forgeline.engine.transitions import AttemptEnd, Transition, record_transition
from forgeline.errors import ForgelineError
from forgeline.executors.base import Executor, JobRef
from forgeline.jobs.placement import JobRoots, checkout_snapshot
from forgeline.jobs.spec import JobResult, JobSpec, JobStatus
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.records import ExecutionRecord, MetricPoint, StepEventDraft, StepEventKind, StepStatus
from forgeline.workflow.steps import JobStep, Step

log = logging.getLogger("forgeline.orchestrator")

STOP_GRACE_SECONDS = 10.0


@dataclass
class RunningJob:
    """A submitted job attempt the orchestrator waits for."""

    step: Step
    spec: JobSpec
    ref: JobRef | None  # None: adopted from a dead orchestrator, already ended
    attempt: int  # its first attempt; spot restarts open later ones (see JobSteps.attempts)
    cache_key: CacheKey | None


class JobSteps:
    """Submits the job steps of one execution and records how their jobs ended."""

    def __init__(self, state: ExecutionState, record: ExecutionRecord, settings: Settings,
                 artifacts: ArtifactStore, executor: Executor, attempts: AttemptLedger, cache_lookups: bool) -> None:
        self.state = state
        self.record = record
        self.settings = settings
        self.artifacts = artifacts
        self.executor = executor
        self.attempts = attempts
        self.cache_lookups = cache_lookups  # False (run --no-cache): results are still recorded in the cache
        self.cache = StepCache(state.store, artifacts)
        self.fingerprinter = Fingerprinter(state.store, artifacts.options_by_protocol)
        self.running: dict[JobRef, RunningJob] = {}
        self.succeeded: list[str] = []  # steps whose job folders are still to discard
        self._checkout: str | None = None

    def submit(self, step: Step) -> None:
        """Build the step's job spec and submit it, unless its inputs fail to resolve or the cache has its result."""
        state = self.state
        first_attempt = self.attempts.latest(step.name) == 0
        try:
            spec = self.spec_of(step, self.attempts.latest(step.name) + 1, strict=True)
        except ForgelineError as exc:
            record_transition(state, Transition(step.name, StepStatus.FAILED, started_at=now(),
                                                failure_reason=f"inputs could not be resolved: {exc}"))
            return
        assert spec is not None
        key = self.cache_key(step, spec)
        if key is not None and self.cache_lookups and self._reuse(step, key):
            return
        log_path = self.executor.log_location(spec)
        start = self.attempts.next_attempt(step.name, log_path)
        record_transition(state, Transition(step.name, StepStatus.EXECUTING,
                                            started_at=now() if first_attempt else None, starts=start))
        attempt = self.attempts.started(step.name, start)
        ref = self.executor.submit(spec, on_restart=self.attempts.restart_recorder(step.name, log_path))
        self.running[ref] = RunningJob(step, spec, ref, attempt, key)

    def spec_of(self, step: Step, attempt: int, strict: bool = False) -> JobSpec | None:
        """The JobSpec of one attempt of ``step`` (specs are pure: rebuilt alike); None for a step with no job."""
        if not isinstance(step, JobStep) and not strict:
            return None
        try:
            return build_job_spec(step, JobContext(self.state.id, attempt, self.settings, self.artifacts,
                                                   self.state.resolution, self.record.work_dir,
                                                   self.record.code_snapshot))
        except ForgelineError:
            if strict:
                raise
            return None

    def cache_key(self, step: Step, spec: JobSpec) -> CacheKey | None:
        """The step's cache key, None when it caches nothing or its key cannot be computed."""
        config = getattr(step, "cache_config", None)
        if config is None or not config.enable_caching:
            return None
        try:
            return compute_cache_key(step, spec, self.record.parameters, self.record.work_dir, self.fingerprinter,
                                     self._code_dir())
        except ForgelineError as exc:  # e.g. a missing input: the job itself reports it clearly
            log.info("no cache key for step %s: %s", step.name, exc)
            return None

    def _code_dir(self) -> str | None:
        """The execution's code snapshot, checked out on this machine once (its cache keys hash that code)."""
        if self.record.code_snapshot is None:
            return None
        if self._checkout is None:
            self._checkout = str(checkout_snapshot(self.artifacts, self.record.code_snapshot,
                                                   JobRoots.of(self.settings).code_dir))
        return self._checkout

    def _reuse(self, step: Step, key: CacheKey) -> bool:
        config = getattr(step, "cache_config", None)
        entry = self.cache.lookup(key, config.expires_after if config else None)
        if entry is None:
            return False
        record_transition(self.state, Transition(
            step.name, StepStatus.SUCCEEDED, started_at=now(), outputs=entry.outputs, properties=entry.properties,
            metrics=logged_metrics(entry.properties), cache_source=entry.execution_id))
        return True

    def finish(self, ref: JobRef) -> None:
        """Conclude a job that has ended."""
        result = self.executor.poll(ref)
        if result is None:
            raise RuntimeError(f"job {ref.id} was reported ended but has no result")
        self.conclude(self.running.pop(ref), result)

    def conclude(self, job: RunningJob, result: JobResult) -> None:
        """Record how a job attempt ended; the scheduler decides whether the step retries or settles."""
        name = job.step.name
        attempt = self.attempts.latest(name)  # later than job.attempt after spot restarts
        metrics = self._record_metrics(name, job.attempt, result)
        if result.status == JobStatus.SUCCEEDED:
            self._succeed(job, result, attempt, metrics)
            return
        status = StepStatus.STOPPED if result.status == JobStatus.STOPPED else StepStatus.FAILED
        kind = result.failure_kind.value if result.failure_kind else None
        end = AttemptEnd(attempt, status, kind, result.failure_reason)
        decision = self.state.scheduler.job_ended(name, status, kind, self.attempts.round_attempt(name), attempt,
                                                  time.monotonic())
        if isinstance(decision, Retry):
            record_transition(self.state, Transition(name, StepStatus.PENDING, attempt=end))
            # counted from after the attempt's end was recorded, so no attempt starts sooner than the delay after it
            self.state.scheduler.count_delay_from(name, decision.delay, time.monotonic())
            return
        record_transition(self.state, Transition(name, status, failure_reason=result.failure_reason,
                                                 metrics=metrics, attempt=end))

    def _succeed(self, job: RunningJob, result: JobResult, attempt: int, metrics: dict[str, float]) -> None:
        name = job.step.name
        properties = {**job.spec.static_properties, **result.properties}
        if metrics:
            properties["metrics"] = metrics
        record_transition(self.state, Transition(name, StepStatus.SUCCEEDED, outputs=result.outputs,
                                                 properties=properties, metrics=metrics,
                                                 attempt=AttemptEnd(attempt, StepStatus.SUCCEEDED)))
        if job.cache_key is not None:
            self.cache.record(job.cache_key, self.record.pipeline_name, job.step, self.state.id,
                              result.outputs, properties)
        self.succeeded.append(name)  # its job folders go once the loop is done (see discard_succeeded_folders)

    def discard_succeeded_folders(self) -> None:
        """Remove the job folders of the steps that succeeded so far, unless the settings keep them."""
        while self.succeeded:
            discard_job_folder(self.settings, self.state.id, self.succeeded.pop())

    def _record_metrics(self, step_name: str, first_attempt: int, result: JobResult) -> dict[str, float]:
        """Store the metric series of a finished job, each sample under its start's attempt; final values."""
        if not result.metrics:
            return {}
        self.state.store.add_metric_points([
            MetricPoint(execution_id=self.state.id, step_name=step_name, attempt=first_attempt + s.attempt - 1,
                        name=s.name, value=s.value, timestamp=s.timestamp, seq=s.seq)
            for s in result.metrics
        ])
        final = {s.name: s.value for s in result.metrics}
        self.state.store.append_events([StepEventDraft(
            self.state.id, StepEventKind.METRIC, step_name, first_attempt,
            payload={"names": sorted(final), "points": len(result.metrics)})])
        return final

    def stop(self, names: list[str]) -> None:
        """Record these running steps Stopping and ask their jobs to end."""
        stopping = set(names)
        for job in self.running.values():
            if job.step.name in stopping:
                record_transition(self.state, Transition(job.step.name, StepStatus.STOPPING))
                if job.ref is not None:
                    self.executor.cancel(job.ref, STOP_GRACE_SECONDS)


def logged_metrics(properties: dict[str, Any]) -> dict[str, float]:
    """The final metric values of a cached result; a step's own ``metrics`` property (a report's) is not one."""
    found = properties.get("metrics")
    if not isinstance(found, dict) or not all(
            isinstance(value, (int, float)) and not isinstance(value, bool) for value in found.values()):
        return {}
    return {str(name): float(value) for name, value in found.items()}
