"""Starting a job's supervisor: forked from this process on Linux, else a fresh ``python -S supervisor.py``.

A new interpreter costs tens of milliseconds per job; a fork of the orchestrator costs well under one, and the
forked child has the supervisor's code loaded already. The child is a copy of a process that may run other
threads (their locks copied in whatever state they were), so between fork and ``os._exit`` it does only what
cannot wait on such a lock: system calls through ``os``, ``select`` and ``signal``, ``open()`` of its own files,
and the standard-library-only supervisor (``jobs/supervisor.py``). No logging, no ``sys.stdout``, no database,
no threads, no imports of C libraries (``prctl`` is loaded before forking), and no cyclic garbage collection,
which could finalise the orchestrator's objects and close descriptors that by then are the job's own.

Other systems start the supervisor by path, as a new interpreter: fork without exec is not safe there in a
process with threads (macOS), and they have no child subreaper or parent-death signal either.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, NoReturn

from forgeline.jobs import process_tree, supervisor

FORK_SUPERVISOR = sys.platform.startswith("linux") and hasattr(os, "fork")
"""Fork the supervisor from this process (Linux); elsewhere start a new interpreter on ``supervisor.py``."""
SUPERVISOR = str(Path(supervisor.__file__))
CHILD_FAILED = 1
"""Exit code of a forked supervisor that failed before its script could be run."""
UNKNOWN_EXIT = 255
"""Return code of a supervisor whose exit status this process could not collect."""


class ForkedSupervisor:
    """A supervisor forked from this process: the part of ``subprocess.Popen`` that jobs use (pid, pipes, wait)."""

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int) -> None:
        self.pid = pid
        self.stdout: IO[bytes] = open(stdout_fd, "rb")  # noqa: SIM115 - closed by the log capture that reads it
        self.stderr: IO[bytes] = open(stderr_fd, "rb")  # noqa: SIM115
        self.returncode: int | None = None
        self._waitpid_lock = threading.Lock()

    def poll(self) -> int | None:
        """Its return code if it has ended, else None (also while another thread waits for it)."""
        if self.returncode is None and self._waitpid_lock.acquire(blocking=False):
            try:
                self._collect(os.WNOHANG)
            finally:
                self._waitpid_lock.release()
        return self.returncode

    def wait(self) -> int:
        """Wait for it to end; its return code (negative: the signal that killed it)."""
        with self._waitpid_lock:
            while self.returncode is None:
                self._collect(0)
        return self.returncode

    def _collect(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:  # collected by someone else: how it ended is lost
            self.returncode = UNKNOWN_EXIT
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


def start_supervisor(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], exit_status: Path,
                     log_path: str) -> ForkedSupervisor | subprocess.Popen[bytes]:
    """Start the supervisor of ``command`` in its own session, its output on pipes; returns once it can be stopped."""
    if FORK_SUPERVISOR:
        return fork_supervisor(list(command), cwd=cwd, env=dict(env), exit_status=exit_status, log_path=log_path)
    return subprocess.Popen(
        # -S: the supervisor needs the standard library only; skipping site saves part of its start-up
        [sys.executable, "-S", SUPERVISOR, str(exit_status), log_path, "--", *command],
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so stop and timeout reach its children too
    )


def fork_supervisor(command: list[str], *, cwd: Path, env: dict[str, str], exit_status: Path,
                    log_path: str) -> ForkedSupervisor:
    """Fork this process into the supervisor of ``command``; returns once the child leads its own session."""
    process_tree.prctl_function()  # loaded here: the child must not load a library
    max_fd = os.sysconf("SC_OPEN_MAX")
    pipes = (*os.pipe(), *os.pipe(), *os.pipe())
    stdout_read, stdout_write, stderr_read, stderr_write, ready_read, ready_write = pipes
    # Signals wait until the child has its own handlers: an orchestrator's handler must never run in it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            _supervise_in_child(command, str(cwd), env, str(exit_status), log_path,
                                (stdout_write, stderr_write, ready_write), max_fd, mask)
    except BaseException:
        for fd in pipes:
            os.close(fd)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for fd in (stdout_write, stderr_write, ready_write):
        os.close(fd)
    try:
        os.read(ready_read, 1)  # a byte once it can be stopped; nothing if it failed first (it exits then)
    finally:
        os.close(ready_read)
    return ForkedSupervisor(pid, stdout_read, stderr_read)


def _supervise_in_child(command: list[str], cwd: str, env: dict[str, str], exit_status: str, log_path: str,
                        fds: tuple[int, int, int], max_fd: int, mask: Iterable[int]) -> NoReturn:
    """The forked child: become the job's session leader with only its own descriptors, supervise, exit."""
    code = CHILD_FAILED
    try:
        gc.disable()
        os.setsid()
        _reset_signal_handlers()
        os.chdir(cwd)
        stdout_write, stderr_write, ready_write = fds
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(stdout_write, 1)
        os.dup2(stderr_write, 2)
        os.dup2(ready_write, 3)
        os.closerange(4, max_fd)  # the orchestrator's database, log files and other jobs' pipes

        def started() -> None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.write(3, b"\0")
            os.close(3)

        code = supervisor.supervise(exit_status, log_path, command, env, started)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the child must not return into the orchestrator
        try:
            os.write(2, f"[forgeline] the job's supervisor failed: {exc!r}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def _reset_signal_handlers() -> None:
    """Default handling for every signal the orchestrator handles in Python; ignored signals stay ignored."""
    for number in signal.valid_signals():
        if number == signal.SIGCHLD or callable(signal.getsignal(number)):
            signal.signal(number, signal.SIG_DFL)
