"""LocalExecutor: runs jobs as local processes; scripts (processing, training) freshly spawned, @step calls warm."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from forgeline.errors import JobError
from forgeline.executors.base import JobRef
from forgeline.executors.futures import FutureJobs
from forgeline.executors.worker_pool import WarmWorkerPool
from forgeline.jobs.control import JobControl, signal_process_group
from forgeline.jobs.placement import JobRoots, place_job, with_folders
from forgeline.jobs.process import read_supervisor_pid
from forgeline.jobs.results import infrastructure_failure
from forgeline.jobs.runners import JobEnvironment, KindRunner, runner_for
from forgeline.jobs.spec import JobResult, JobSpec
from forgeline.jobs.supervisor_start import prestart_supervisors
from forgeline.store.artifacts import ArtifactStore

JOB_PID_FILE = ".forgeline-job.pid"
"""Written into the job directory when the job's process starts: its process group, for ``recover``."""


@dataclass(frozen=True)
class LocalJob:
    """A job submitted to a LocalExecutor."""

    spec: JobSpec
    future: Future[JobResult]
    control: JobControl


class LocalExecutor(FutureJobs[LocalJob]):
    """Runs up to `max_parallel` jobs at once on this machine, each waited on by a thread of its own."""

    def __init__(self, artifacts: ArtifactStore, max_parallel: int, *, python: str = sys.executable,
                 roots: JobRoots | None = None) -> None:
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, got {max_parallel}")
        self._artifacts = artifacts
        self._roots = roots  # None: only specs that name their own job folder and log can run
        self._threads = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="forgeline-job")
        self._workers = WarmWorkerPool(max_parallel, python=python)
        self._env = JobEnvironment(artifacts, self._workers, python)
        self._lock = threading.Lock()
        self._jobs: dict[str, LocalJob] = {}
        self._active: set[JobControl] = set()

    def submit(self, spec: JobSpec, on_restart: Callable[[str], None] | None = None) -> JobRef:
        """Start the job without waiting for it; its reference is its job id."""
        spec = with_folders(spec, self._roots)  # the checkout of its code waits for the job's own thread
        control = JobControl(on_attach=lambda pid: record_job_pid(spec, pid), on_restart=on_restart)
        with self._lock:
            if spec.job_id in self._jobs:
                raise JobError(f"job {spec.job_id} was already submitted to this executor")
            self._active.add(control)
            future = self._threads.submit(self._run, runner_for(spec.kind), spec, control)
            self._jobs[spec.job_id] = LocalJob(spec, future, control)
        return JobRef(spec.job_id)

    def log_location(self, spec: JobSpec) -> str:
        """The job's log file: the one the spec names, else ``<logs folder>/<job id>.log``."""
        return with_folders(spec, self._roots).log_path

    def prestart_worker(self) -> None:
        """Start a warm @step worker now (see WarmsWorkers), while the orchestrator prepares the first job."""
        self._workers.prestart()

    def prestart_supervisors(self) -> None:
        """Start this process's supervisor launcher now (see WarmsWorkers), while the first job is prepared."""
        prestart_supervisors()

    def cancel(self, ref: JobRef, grace_seconds: float = 10.0) -> None:
        """SIGTERM the job's processes, SIGKILL after ``grace_seconds``; its result is Stopped.

        A job an earlier executor placed (a reference rebuilt from a stored attempt whose orchestrator is gone)
        is ended at once, through the process group noted in its job folder.
        """
        with self._lock:
            job = self._jobs.get(ref.id)
        if job is not None:
            job.control.stop(grace_seconds)
        elif self._roots is not None:
            end_orphaned_job(self._roots.jobs_dir / ref.id)
        else:
            raise JobError(f"job {ref.id} was not submitted to this executor, which places no jobs to find it by")

    def logs(self, ref: JobRef) -> str:
        """The job's log as written so far."""
        try:
            return Path(self._job(ref).spec.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def recover(self, spec: JobSpec) -> JobResult | None:
        """Adopt a script job that ended after its orchestrator died (its supervisor recorded the exit).

        A job not ended, or one that cannot be adopted (a @step call, a spot job killed mid-run), has its
        processes ended; None: run it again.
        """
        try:
            spec = with_folders(spec, self._roots)  # adopting collects outputs: no code needed
            result = runner_for(spec.kind).adopt(spec, self._artifacts)
        except Exception as exc:  # collecting the outputs failed: a result all the same
            return infrastructure_failure(exc)
        if result is None:
            end_orphaned_job(Path(spec.job_dir))
        return result

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Stop running and queued jobs, wait for their threads, then end the warm workers."""
        with self._lock:
            active = list(self._active)
        for control in active:
            control.stop(grace_seconds)
        self._threads.shutdown(wait=True)
        self._workers.shutdown()

    def _run(self, runner: KindRunner, spec: JobSpec, control: JobControl) -> JobResult:
        try:
            return runner.run(place_job(spec, self._roots, self._artifacts), self._env, control)
        except Exception as exc:  # a bug must still end as a result, or the orchestrator waits forever
            return infrastructure_failure(exc)
        finally:
            with self._lock:
                self._active.discard(control)


def record_job_pid(spec: JobSpec, pid: int) -> None:
    """Note the process group of a job's newest process in its job directory (a restart replaces it)."""
    try:
        Path(spec.job_dir).mkdir(parents=True, exist_ok=True)
        (Path(spec.job_dir) / JOB_PID_FILE).write_text(str(pid))
    except OSError:
        pass  # only recovery needs it; a script job's supervisor records its own as well


def end_orphaned_job(job_dir: Path) -> None:
    """SIGKILL the process group of a job a dead orchestrator left behind, if it still runs."""
    for pid in (read_pid(job_dir / JOB_PID_FILE), read_supervisor_pid(job_dir)):
        if pid:
            signal_process_group(pid, signal.SIGKILL)  # a group already gone is ignored


def read_pid(path: Path) -> int | None:
    """A process id written in ``path``; None if there is none."""
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        return None

