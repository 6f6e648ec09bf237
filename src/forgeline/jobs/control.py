"""JobControl: lets another thread stop a running job, or a deadline time it out, by signalling its process group."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from forgeline.jobs.process_tree import descendants, signal_all
from forgeline.jobs.spec import FailureKind, JobResult, JobStatus


class EndCause(Enum):
    """Why forgeline itself ended a job's process."""

    STOPPED = "Stopped"
    TIMED_OUT = "TimedOut"


class JobProcess(Protocol):
    """What JobControl needs of a job's process: a ``subprocess.Popen``, or a forked supervisor."""

    @property
    def pid(self) -> int:
        """Its process id, which is also its process group."""

    def poll(self) -> int | None:
        """Its return code once it has ended, else None."""


def signal_process_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to a whole process group, ignoring a group that is already gone."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def kill_process_tree(process: JobProcess) -> None:
    """SIGKILL a job's process group and, while its leader lives, every process below it (setsid ones too)."""
    # a leader already waited for has ended its tree itself (the supervisor does), and its pid may be reused
    below = descendants(process.pid) if process.poll() is None else []
    signal_process_group(process.pid, signal.SIGKILL)
    signal_all(below, signal.SIGKILL)


class JobControl:
    """Ends the process (group) of one job on request: SIGTERM at once, SIGKILL after a grace period.

    The runner `attach`es the process it spawned (it must lead its own session) and `release`s it when the
    process is done; `stop` and the `expire_after` deadline may come from any thread, before or during the run.
    """

    def __init__(self, on_attach: Callable[[int], None] | None = None,
                 on_restart: Callable[[str], None] | None = None) -> None:
        self._on_attach = on_attach
        self._on_restart = on_restart
        self._lock = threading.Lock()
        self._process: JobProcess | None = None
        self._cause: EndCause | None = None
        self._grace_seconds = 10.0
        self._terminating = False
        self._released = False
        self._deadline: threading.Timer | None = None
        self.max_run_seconds: float | None = None

    @property
    def pid(self) -> int | None:
        """OS process id of the attached process, while one is attached."""
        process = self._process
        return process.pid if process is not None else None

    @property
    def cause(self) -> EndCause | None:
        """Why the job was ended by forgeline, or None while nobody asked."""
        return self._cause

    def attach(self, process: JobProcess) -> None:
        """Take charge of the running job's process; a stop that came earlier takes effect now."""
        with self._lock:
            self._process = process
            self._terminating = False
            if self._cause is not None:
                self._terminate_locked()
        if self._on_attach is not None:
            self._on_attach(process.pid)

    def restarted(self, reason: str) -> None:
        """Report that the job starts its process again after an interruption (a spot restart), and why."""
        if self._on_restart is not None:
            self._on_restart(reason)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """Ask the job to end (SIGTERM to its process group), forcing it with SIGKILL after `grace_seconds`."""
        self._end(EndCause.STOPPED, grace_seconds)

    def expire_after(self, seconds: float, grace_seconds: float) -> None:
        """End the job as timed out if it is still running `seconds` from now."""
        with self._lock:
            self.max_run_seconds = seconds
            self._deadline = threading.Timer(seconds, self._end, (EndCause.TIMED_OUT, grace_seconds))
            self._deadline.daemon = True
            self._deadline.start()

    def release(self, final: bool = True) -> EndCause | None:
        """Forget the process (it has ended or answered); return why forgeline ended it, if it did.

        With ``final=False`` the job goes on with another process (a training job restarting after an
        interruption): a stop that comes in between is kept and ends the next process as soon as it attaches.
        """
        with self._lock:
            self._released = final
            self._process = None
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            return self._cause

    def _end(self, cause: EndCause, grace_seconds: float) -> None:
        with self._lock:
            if self._released or self._cause is not None:
                return
            self._cause = cause
            self._grace_seconds = grace_seconds
            if self._process is not None:
                self._terminate_locked()

    def _terminate_locked(self) -> None:
        assert self._process is not None
        if self._terminating:
            return
        self._terminating = True
        pgid = self._process.pid
        signal_process_group(pgid, signal.SIGTERM)
        # The SIGKILL stays bound to this group even after release: it also ends children that outlived it.
        killer = threading.Timer(self._grace_seconds, kill_process_tree, (self._process,))
        killer.daemon = True
        killer.start()


def ended_by_forgeline(cause: EndCause, what: str, max_run_seconds: float | None) -> JobResult:
    """The result of a job that forgeline ended: Stopped on request, or Failed with Timeout past its deadline."""
    if cause is EndCause.STOPPED:
        return JobResult(status=JobStatus.STOPPED, failure_reason=f"{what} was stopped on request")
    return JobResult(
        status=JobStatus.FAILED,
        failure_kind=FailureKind.TIMEOUT,
        failure_reason=(
            f"MaxRuntimeExceeded: job ran longer than {max_run_seconds:g} s and was stopped; "
            "raise the step's max_run (in seconds, e.g. TrainingStep(..., max_run=7200)) if it needs more time"
        ),
    )
