"""LocalExecutor: runs jobs as local processes; scripts (processing, training) freshly spawned, @step calls warm."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forgeline.errors import JobError
from forgeline.executors.worker_pool import WarmWorkerPool
from forgeline.jobs.control import JobControl
from forgeline.jobs.function import run_function_job
from forgeline.jobs.processing import adopt_processing_job, run_processing_job
from forgeline.jobs.results import infrastructure_failure
from forgeline.jobs.spec import JobResult, JobSpec
from forgeline.jobs.training import adopt_training_job, run_training_job

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore

JobRunner = Callable[[JobSpec, JobControl], JobResult]
"""Runs one job to its end in the calling thread; stops come through the JobControl."""


@dataclass(frozen=True)
class LocalJobHandle:
    """A job submitted to a LocalExecutor."""

    future: Future[JobResult]
    control: JobControl

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Ask the job to end (SIGTERM), then force it (SIGKILL) after the grace period; result is Stopped."""
        self.control.stop(grace_seconds)

    @property
    def pid(self) -> int | None:
        """OS process id of the job while it runs."""
        return self.control.pid


class LocalExecutor:
    """Runs up to `max_parallel` jobs at once on this machine, each waited on by a thread of its own."""

    def __init__(self, artifacts: ArtifactStore, max_parallel: int, *, python: str = sys.executable) -> None:
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        self._artifacts = artifacts
        self._python = python
        self._threads = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="forgeline-job")
        self._workers = WarmWorkerPool(max_parallel, python=python)
        self._runners: dict[str, JobRunner] = {
            "processing": self._run_processing,
            "training": self._run_training,
            "function": self._run_function,
        }
        self._lock = threading.Lock()
        self._active: set[JobControl] = set()

    def submit(self, spec: JobSpec, on_start: Callable[[int], None] | None = None,
               on_restart: Callable[[str], None] | None = None) -> LocalJobHandle:
        """Start the job without waiting for it; its future always completes with a JobResult."""
        control = JobControl(on_attach=on_start, on_restart=on_restart)
        runner = self._runners.get(spec.kind)
        if runner is None:
            future: Future[JobResult] = Future()
            kinds = ", ".join(sorted(self._runners))
            future.set_result(
                infrastructure_failure(JobError(f"LocalExecutor cannot run '{spec.kind}' jobs (it runs: {kinds})"))
            )
            return LocalJobHandle(future, control)
        with self._lock:
            self._active.add(control)
        future = self._threads.submit(self._run, runner, spec, control)
        return LocalJobHandle(future, control)

    def adopt(self, spec: JobSpec) -> JobResult | None:
        """The result of a script job that ended after its orchestrator died (its supervisor recorded the exit).

        None when it has not ended, or cannot be adopted (a @step call, a spot job killed mid-run): run it again.
        """
        adopter = {"processing": adopt_processing_job, "training": adopt_training_job}.get(spec.kind)
        if adopter is None:
            return None
        try:
            return adopter(spec, self._artifacts)
        except Exception as exc:  # collecting the outputs failed: a result all the same
            return infrastructure_failure(exc)

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Stop running and queued jobs, wait for their threads, then end the warm workers."""
        with self._lock:
            active = list(self._active)
        for control in active:
            control.stop(grace_seconds)
        self._threads.shutdown(wait=True)
        self._workers.shutdown()

    def _run(self, runner: JobRunner, spec: JobSpec, control: JobControl) -> JobResult:
        try:
            return runner(spec, control)
        except Exception as exc:  # a bug must still end as a result, or the orchestrator waits forever
            return infrastructure_failure(exc)
        finally:
            with self._lock:
                self._active.discard(control)

    def _run_processing(self, spec: JobSpec, control: JobControl) -> JobResult:
        return run_processing_job(spec, self._artifacts, control, python=self._python)

    def _run_training(self, spec: JobSpec, control: JobControl) -> JobResult:
        return run_training_job(spec, self._artifacts, control, python=self._python)

    def _run_function(self, spec: JobSpec, control: JobControl) -> JobResult:
        return run_function_job(spec, self._artifacts, self._workers, control)
