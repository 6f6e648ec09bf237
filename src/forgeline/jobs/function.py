"""@step function jobs, forgeline's side: a handle on a warm worker process and the run of one call on it."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from forgeline.errors import JobError
from forgeline.jobs.control import JobControl, ended_by_forgeline, signal_process_group
from forgeline.jobs.function_fork import WORKER_ENV as WORKER_ENV  # set in every worker; defined with the fork
from forgeline.jobs.function_fork import ForkedWorkerProcess, take_offered, worker_pid
from forgeline.jobs.function_protocol import read_message, write_message
from forgeline.jobs.results import complete_job, infrastructure_failure, interrupted
from forgeline.jobs.spec import FailureKind, JobResult, JobSpec, JobStatus
from forgeline.jobs.workspace import prepare_workspace

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore

WORKER_MODULE = "forgeline.jobs.function_worker"
TIMEOUT_GRACE_SECONDS = 10.0
"""How long a function past its max_run_seconds gets between SIGTERM and SIGKILL of its worker."""


class WorkerProcess(Protocol):
    """A worker's process: a ``subprocess.Popen``, or a worker forked from the process that started the pipeline."""

    @property
    def pid(self) -> int:
        """Its process id, which is also its process group."""

    def poll(self) -> int | None:
        """Its return code once it has ended, else None."""

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to end (``subprocess.TimeoutExpired`` after ``timeout``); its return code."""


class FunctionWorker:
    """A warm Python process that runs @step functions one call at a time, over a private pair of pipes."""

    def __init__(self, process: WorkerProcess, request_fd: int, reply_fd: int) -> None:
        self.process = process
        self._request_fd = request_fd
        self._reply_fd = reply_fd
        self._reusable = True
        self._killed = False

    @classmethod
    def spawn(cls, python: str = sys.executable, env: Mapping[str, str] | None = None) -> FunctionWorker:
        """Start a worker in its own session, so that stopping a call also ends the subprocesses it started."""
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        try:
            process = subprocess.Popen(
                [python, "-m", WORKER_MODULE, str(request_read), str(reply_write)],
                pass_fds=(request_read, reply_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1", WORKER_ENV: "1"},
                start_new_session=True,
            )
        except BaseException:
            for fd in (request_write, reply_read):
                os.close(fd)
            raise
        finally:
            os.close(request_read)
            os.close(reply_write)
        return cls(process, request_write, reply_read)

    @classmethod
    def adopt_offered(cls) -> FunctionWorker | None:
        """The worker this process's starter forked for it (see ``function_fork``), if it offered one; else None."""
        forked = take_offered()
        if forked is None:
            return None
        pid = worker_pid(forked)
        if pid is None:  # its keeper failed before forking it
            for fd in (forked.request_fd, forked.reply_fd, forked.status_fd):
                os.close(fd)
            return None
        return cls(ForkedWorkerProcess(pid, forked.status_fd), forked.request_fd, forked.reply_fd)

    @property
    def pid(self) -> int:
        """Process id of the worker (also its process group id)."""
        return self.process.pid

    @property
    def reusable(self) -> bool:
        """True while the worker is alive and no call left it in an unknown state."""
        return self._reusable and self.process.poll() is None

    def retire(self) -> None:
        """Mark the worker as not to be used again (it was signalled, or it died)."""
        self._reusable = False

    def call(self, request: dict[str, Any]) -> dict[str, Any] | None:
        """Send one request and wait for its reply; None if the worker died first."""
        try:
            write_message(self._request_fd, request)
            reply: dict[str, Any] | None = read_message(self._reply_fd)
        except OSError:
            reply = None
        if reply is None:
            self.retire()
        return reply

    def kill(self) -> None:
        """End the worker and anything it started (SIGKILL to its process group); safe from any thread."""
        self.retire()
        if not self._killed:
            self._killed = True
            signal_process_group(self.process.pid, signal.SIGKILL)

    def dispose(self) -> None:
        """Kill the worker, reap it and close its pipes; only by the thread that holds it."""
        self.kill()
        self.process.wait()
        for fd in (self._request_fd, self._reply_fd):
            if fd >= 0:
                os.close(fd)
        self._request_fd = self._reply_fd = -1


class WorkerSource(Protocol):
    """Lends warm workers, one call at a time (a WarmWorkerPool)."""

    def lease(self) -> AbstractContextManager[FunctionWorker]:
        """Borrow a worker for the duration of a `with` block."""
        ...


def run_function_job(
    spec: JobSpec,
    artifacts: ArtifactStore,
    workers: WorkerSource,
    control: JobControl,
    *,
    timeout_grace_seconds: float = TIMEOUT_GRACE_SECONDS,
) -> JobResult:
    """Run one @step call on a warm worker and return its result; failures are results, never exceptions."""
    if spec.function is None:
        return infrastructure_failure(JobError(f"function job {spec.job_id} names no function"))
    what = f"step function {spec.function.name}"
    if control.cause is not None:
        return ended_by_forgeline(control.cause, what, spec.max_run_seconds)
    try:
        prepare_workspace(spec, artifacts)
        request = _request(spec, artifacts)
    except Exception as exc:  # whatever broke the staging is the reason of the failure
        return infrastructure_failure(exc)
    try:
        with workers.lease() as worker:
            outcome = _call(spec, what, worker, control, request, timeout_grace_seconds)
    except Exception as exc:  # no worker could be started
        return infrastructure_failure(exc)
    if isinstance(outcome, JobResult):
        return outcome
    return complete_job(spec, artifacts, None, outcome)


def _call(
    spec: JobSpec,
    what: str,
    worker: FunctionWorker,
    control: JobControl,
    request: dict[str, Any],
    timeout_grace_seconds: float,
) -> JobResult | dict[str, Any]:
    """Make the call; return the failure or stop as a result, or the properties of a successful call."""
    control.attach(worker.process)
    if spec.max_run_seconds is not None:
        control.expire_after(spec.max_run_seconds, timeout_grace_seconds)
    try:
        reply = worker.call(request)
    finally:
        cause = control.release()
    if cause is not None:
        worker.retire()  # it was signalled, maybe just after answering
        return ended_by_forgeline(cause, what, spec.max_run_seconds)
    if reply is None:
        return _worker_died(worker, what)
    if not reply["ok"]:
        return JobResult(
            status=JobStatus.FAILED,
            failure_kind=FailureKind(reply["failure_kind"]),
            failure_reason=reply["reason"],
        )
    properties: dict[str, Any] = reply["properties"]
    return properties


def _request(spec: JobSpec, artifacts: ArtifactStore) -> dict[str, Any]:
    assert spec.function is not None
    try:
        arguments = pickle.dumps((spec.args, spec.kwargs), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise JobError(f"the arguments of step function {spec.function.name} cannot be pickled: {exc}") from exc
    return {
        "function": (spec.function.name, spec.function.file, spec.function.module),
        "arguments": arguments,
        "job_dir": os.path.abspath(spec.job_dir),
        "log_path": os.path.abspath(spec.log_path),
        "working_dir": spec.working_dir,
        "code_root": spec.code_root,
        "env": dict(spec.env),
        "return_uri": spec.return_uri,
        "artifact_root": artifacts.root,
        "storage_options": artifacts.options_by_protocol,
    }


def _worker_died(worker: FunctionWorker, what: str) -> JobResult:
    try:
        exit_code = worker.process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # it closed its pipe yet lives on: treat it as dead
        worker.kill()
        exit_code = worker.process.wait()
    if exit_code < 0:
        return interrupted(f"the worker process running {what}", -exit_code)
    return JobResult(
        status=JobStatus.FAILED,
        failure_kind=FailureKind.INFRASTRUCTURE_ERROR,
        failure_reason=(
            f"the worker process running {what} exited with code {exit_code} before answering "
            "(a failure to start shows on forgeline's stderr; or the function called os._exit)"
        ),
    )
