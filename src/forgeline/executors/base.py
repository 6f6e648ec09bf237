"""The Executor protocol: submit a JobSpec, get a handle to wait on or stop."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from typing import Protocol

from forgeline.jobs.spec import JobResult, JobSpec


class JobHandle(Protocol):
    """A submitted job: a future of its result, and a way to stop it."""

    @property
    def future(self) -> Future[JobResult]:
        """Completes with the JobResult (never raises: failures are results)."""
        ...

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Ask the job to end (SIGTERM), then force it (SIGKILL) after the grace period; result is Stopped."""
        ...

    @property
    def pid(self) -> int | None:
        """OS process id of the job while it runs on this machine (None elsewhere or not yet started)."""
        ...


class Executor(Protocol):
    """Runs jobs somewhere and reports their results."""

    def submit(self, spec: JobSpec, on_start: Callable[[int], None] | None = None,
               on_restart: Callable[[str], None] | None = None) -> JobHandle:
        """Start the job without waiting for it; ``on_start`` gets each OS process id the job starts.

        ``on_restart`` gets the reason each time the job starts again after an interruption (spot restarts),
        before the new process starts.
        """
        ...

    def adopt(self, spec: JobSpec) -> JobResult | None:
        """The result of an attempt that ended while no orchestrator watched it; None if it cannot be adopted."""
        ...

    def shutdown(self) -> None:
        """Release workers and threads; running jobs are stopped."""
        ...
