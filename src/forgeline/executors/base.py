"""The Executor protocol: submit a JobSpec, get an opaque JobRef; poll, wait, cancel and read logs through it.

Nothing in it names a process: where and how a job runs (a local process group, a cluster task) is the
executor's business, and so are the job's folders, its log and the checkout of its code snapshot
(``forgeline.jobs.placement``), and taking over the jobs an orchestrator that died left behind (``recover``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from forgeline.jobs.spec import JobResult, JobSpec


@dataclass(frozen=True)
class JobRef:
    """A submitted job, as its executor named it; opaque to everyone else."""

    id: str


class Executor(Protocol):
    """Runs jobs somewhere and reports their results; failures are results, never exceptions."""

    def submit(self, spec: JobSpec, on_restart: Callable[[str], None] | None = None) -> JobRef:
        """Start the job without waiting for it.

        ``on_restart`` gets the reason each time the job starts again after an interruption (spot restarts),
        before it starts again.
        """
        ...

    def poll(self, ref: JobRef) -> JobResult | None:
        """The job's result once it has ended, else None."""
        ...

    def wait(self, ref: JobRef, timeout: float | None = None) -> JobResult | None:
        """Block until the job ends (its result) or ``timeout`` seconds pass (None)."""
        ...

    def wait_any(self, refs: Collection[JobRef], timeout: float | None = None) -> list[JobRef]:
        """Block until one of ``refs`` has ended or ``timeout`` seconds pass; the ones that have ended."""
        ...

    def cancel(self, ref: JobRef, grace_seconds: float = 10.0) -> None:
        """Ask the job to end, forcing it after ``grace_seconds``; its result is Stopped.

        ``ref`` may also be rebuilt from a stored attempt (``JobRef(job_id)``) for a job an earlier executor
        instance submitted, its orchestrator lost: that job is ended too, if it still runs.
        """
        ...

    def logs(self, ref: JobRef) -> str:
        """What the job has written so far (stdout and stderr)."""
        ...

    def log_location(self, spec: JobSpec) -> str:
        """Where this job's log will be once submitted (a path or URI readers can open); the same for every call."""
        ...

    def recover(self, spec: JobSpec) -> JobResult | None:
        """An attempt a previous orchestrator submitted: its result if it ended; else it is ended, and None."""
        ...

    def shutdown(self) -> None:
        """Release workers and threads; running jobs are stopped."""
        ...


@runtime_checkable
class WarmsWorkers(Protocol):
    """An executor that can start what jobs run in ahead of the first job (the local one)."""

    def prestart_worker(self) -> None:
        """Start a @step worker now unless one is already there; the first @step job then finds it started."""
        ...

    def prestart_supervisors(self) -> None:
        """Start what starts script jobs now; the first script job then finds its supervisor forked ahead."""
        ...
