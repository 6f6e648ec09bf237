"""Script processes: spawn a Python script in its own session, stream its logs, and wait for it under JobControl.

Shared by the job kinds that run a user's script (processing, training): they differ in what they stage and
collect, not in how the process is started, watched, stopped and judged.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from forgeline.errors import JobInputError
from forgeline.jobs.control import EndCause, JobControl, ended_by_forgeline
from forgeline.jobs.logs import LineCallback, LogCapture
from forgeline.jobs.results import failure_of, interrupted
from forgeline.jobs.spec import FailureKind, JobResult, JobSpec, JobStatus
from forgeline.jobs.supervisor import SCRIPT_VARIABLES
from forgeline.jobs.supervisor_start import start_supervisor
from forgeline.jobs.workspace import CODE_FOLDER

TIMEOUT_GRACE_SECONDS = 10.0
"""How long a job past its max_run_seconds gets between SIGTERM and SIGKILL."""

LINGERING_PIPE_SECONDS = 2.0
"""How long to keep reading logs after the supervisor ended while another process holds its pipes."""
PIPE_CHECK_SECONDS = 0.05
"""How often to look whether the supervisor ended while its pipes stay open (another process holds them)."""

MAX_ARGUMENT_BYTES = 32 * 4096
"""Linux's MAX_ARG_STRLEN: no single argument or environment entry may be longer (E2BIG)."""
ARG_MAX_HEADROOM = 64 * 1024  # the supervisor's own arguments and what the kernel keeps beside them
DEFAULT_ARG_MAX = 2 * 1024 * 1024

EXIT_STATUS_FILE = ".forgeline-exit-status"
"""Written into the job directory by the job's supervisor when its script ends (see jobs/supervisor.py)."""
SUPERVISOR_PID_FILE = ".forgeline-supervisor.pid"
"""Written into the job directory by the job's supervisor as it starts: the job's process group."""


@dataclass(frozen=True)
class ScriptExit:
    """How one script process ended: its exit code (negative: killed by that signal) and who ended it."""

    exit_code: int
    cause: EndCause | None  # set when forgeline ended it: a stop or the max-run deadline
    stderr_tail: list[str]

    @property
    def interrupted_by_signal(self) -> int | None:
        """The signal that killed the process when forgeline did not send it (preemption, OOM), else None."""
        return -self.exit_code if self.cause is None and self.exit_code < 0 else None


def script_environment(spec: JobSpec, job_dir: Path, contract: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a script: forgeline's own, the step's variables, then the job kind's contract."""
    env = {**os.environ, **SCRIPT_VARIABLES, **spec.env, **(contract or {})}
    if spec.source_dir is not None:
        # Modules at the top of source_dir import as they did on the user's machine, wherever the script sits.
        code_dir = str(job_dir / CODE_FOLDER)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [code_dir, env.get("PYTHONPATH")]))
    return env


def run_script(
    command: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log_path: str,
    control: JobControl,
    line_callbacks: Iterable[LineCallback] = (),
    max_run_seconds: float | None = None,
    grace_seconds: float = TIMEOUT_GRACE_SECONDS,
    final: bool = True,
) -> ScriptExit:
    """Run one script process to its end; raises only when it cannot be started.

    ``final=False`` keeps ``control`` open for another process of the same job (see JobControl.release).
    """
    capture = LogCapture(log_path, line_callbacks)
    exit_status = cwd / EXIT_STATUS_FILE
    exit_status.unlink(missing_ok=True)  # a restarted training script must not look finished
    (cwd / SUPERVISOR_PID_FILE).unlink(missing_ok=True)
    try:
        # in its own session, so stop and timeout reach the script's children too
        process = start_supervisor(command, cwd=cwd, env=env, exit_status=exit_status, log_path=log_path)
    except BaseException:
        capture.close()
        raise
    capture.follow(process)  # this thread reads the pipes while it waits (join)
    try:
        control.attach(process)
        if max_run_seconds is not None:
            control.expire_after(max_run_seconds, grace_seconds)
        # The supervisor holds the other end of the pipes alone and lets go of them once it has written the
        # script's exit status: their end is the job's end, without waiting for the supervisor to be collected.
        while not capture.join(PIPE_CHECK_SECONDS):
            if process.poll() is not None:  # it has ended, yet some other process holds its pipes
                capture.join(LINGERING_PIPE_SECONDS)
                break
        exit_code = read_exit_status(cwd)
        # no status file: the supervisor itself was killed (a stop's SIGKILL, or a signal to the whole group)
        supervisor_code = process.wait() if exit_code is None or isinstance(process, subprocess.Popen) else 0
    finally:
        capture.read_in_background()  # what a process still holding the pipes writes still reaches the log
        cause = control.release(final)
    return ScriptExit(exit_code=supervisor_code if exit_code is None else exit_code, cause=cause,
                      stderr_tail=capture.stderr_tail)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGKILL)
"""Signals that end a job unwatched only as a stop does: an orchestrator standing down, a kill, the OOM killer."""


def adopted_exit(job_dir: Path, log_path: str) -> ScriptExit | None:
    """How a script ended while nobody watched it (its orchestrator had died), or None: not ended, or stopped.

    A script ended by SIGTERM or SIGKILL meanwhile was interrupted, not finished (the orchestrator that lost the
    execution stops its jobs as it stands down, and may do so before the new one looks): it runs again.
    """
    exit_code = read_exit_status(job_dir)
    if exit_code is None or -exit_code in STOP_SIGNALS:
        return None
    return ScriptExit(exit_code=exit_code, cause=None, stderr_tail=log_tail(log_path))


def log_tail(log_path: str, lines: int = 20, max_bytes: int = 8192) -> list[str]:
    """The last lines of a log file (both streams), read from its end only."""
    try:
        with open(log_path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line][-lines:]


def read_supervisor_pid(job_dir: Path) -> int | None:
    """The process id of the job's supervisor (its process group), as it recorded it; None if it did not."""
    try:
        return int((job_dir / SUPERVISOR_PID_FILE).read_text())
    except (OSError, ValueError):
        return None


def read_exit_status(job_dir: Path) -> int | None:
    """The exit code the supervisor recorded for the job's script (negative: killed by that signal), or None."""
    try:
        return int((job_dir / EXIT_STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None


def failed_script_result(ended: ScriptExit, what: str, spec: JobSpec) -> JobResult | None:
    """The result of a script that did not succeed (stopped, timed out, killed, non-zero exit), or None."""
    if ended.cause is not None:
        return dataclasses.replace(ended_by_forgeline(ended.cause, what, spec.max_run_seconds),
                                   exit_code=ended.exit_code)
    if ended.exit_code < 0:
        return interrupted(what, -ended.exit_code, ended.exit_code)
    if ended.exit_code > 0:
        return JobResult(
            status=JobStatus.FAILED,
            failure_kind=FailureKind.JOB_FAILED,
            failure_reason=_exit_reason(what, ended.exit_code, ended.stderr_tail, spec.log_path),
            exit_code=ended.exit_code,
        )
    return None


def check_command_size(command: Sequence[str], env: Mapping[str, str], spec: JobSpec) -> None:
    """Refuse, naming the step and the argument, a command the operating system would not start (E2BIG)."""
    step = step_name(spec)
    advice = "pass large values in a file the script reads (an input), not on its command line"
    for position, argument in enumerate(command[2:], start=1):  # after the interpreter and the script
        if len(argument.encode()) > MAX_ARGUMENT_BYTES:
            flag = command[position] if position > 1 and command[position].startswith("-") else None
            label = f"the value of {flag}" if flag else f"argument {position}"
            raise JobInputError(f"step {step!r}: {label} is {len(argument.encode()):,} bytes, over the "
                                f"{MAX_ARGUMENT_BYTES:,} the operating system allows one argument; {advice}")
    for name, value in env.items():
        if len(name.encode()) + len(value.encode()) + 1 > MAX_ARGUMENT_BYTES:
            raise JobInputError(f"step {step!r}: environment variable {name} is {len(value.encode()):,} bytes, "
                                f"over the {MAX_ARGUMENT_BYTES:,} the operating system allows one variable; {advice}")
    total = sum(len(a.encode()) + 1 + 8 for a in command)
    total += sum(len(k.encode()) + len(v.encode()) + 2 + 8 for k, v in env.items())
    if total > _arg_max():
        raise JobInputError(f"step {step!r}: its arguments and environment together are {total:,} bytes, "
                            f"over the {_arg_max():,} the operating system allows; {advice}")


def step_name(spec: JobSpec) -> str:
    """The step a job runs for, from its id ``<execution>/<step>/<attempt>``."""
    parts = spec.job_id.split("/")
    return parts[-2] if len(parts) >= 3 else spec.job_id


def _arg_max() -> int:
    try:
        return int(os.sysconf("SC_ARG_MAX")) - ARG_MAX_HEADROOM
    except (ValueError, OSError, AttributeError):
        return DEFAULT_ARG_MAX


def staging_failure(exc: Exception, spec: JobSpec) -> JobResult:
    """The result of a job that failed before or while its script started, its reason noted in the step log."""
    result = failure_of(exc)
    note_in_log(spec.log_path, f"the job could not start: {result.failure_reason}")
    return result


def note_in_log(log_path: str, message: str) -> None:
    """Append one ``[forgeline] ...`` line to a job's log, between the lines of its script."""
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"[forgeline] {message}\n".encode())


def _exit_reason(what: str, exit_code: int, stderr_tail: list[str], log_path: str) -> str:
    if not stderr_tail:
        return f"{what} exited with code {exit_code} and wrote nothing to stderr; see its log {log_path}"
    return f"{what} exited with code {exit_code}: " + "\n".join(stderr_tail)
