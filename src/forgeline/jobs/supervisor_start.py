"""Starting a job's supervisor: forked by this process's supervisor launcher on Linux, else ``python -S supervisor.py``.

The launcher (``jobs/supervisor_launcher.py``) is one small single-threaded process per orchestrator, started
with its first script job; forking a supervisor from it costs about a millisecond, where a new interpreter costs
tens, and a fork of the orchestrator itself several (its size and threads make the fork, and every page either
side writes afterwards, expensive). This process is not the supervisor's parent then: the launcher reports when
each supervisor can be stopped and how it ended, and :class:`LaunchedSupervisor` gives jobs the part of
``subprocess.Popen`` they use (pid, pipes, poll, wait).

Other systems start each supervisor by path, as a new interpreter: they have no child subreaper or parent-death
signal, which the supervisor relies on, and forking there is not the cheap, safe operation it is on Linux.
"""

from __future__ import annotations

import marshal
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

from forgeline.jobs import supervisor, supervisor_launcher
from forgeline.jobs.supervisor_launcher import HEADER, RECORD

LAUNCH_SUPERVISOR = sys.platform.startswith("linux")
"""Start supervisors through the launcher (Linux); elsewhere start a new interpreter on ``supervisor.py``."""
SUPERVISOR = str(Path(supervisor.__file__))
LAUNCHER = str(Path(supervisor_launcher.__file__))
UNKNOWN_EXIT = 255
"""Return code of a supervisor whose end was not reported (its launcher died first)."""
GONE_CHECK_SECONDS = 0.05
"""How often to look whether a supervisor still runs once its launcher is gone."""


class SupervisorLauncherError(OSError):
    """The supervisor launcher could not start a job's supervisor."""


class _Ending:
    """How one launched supervisor ended, filled in by the thread that reads the launcher's reports."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.code: int | None = None  # None once done: the launcher died before it could tell


class LaunchedSupervisor:
    """A supervisor started by the launcher: the part of ``subprocess.Popen`` that jobs use."""

    def __init__(self, pid: int, stdout_fd: int, stderr_fd: int, ending: _Ending) -> None:
        self.pid = pid
        self.stdout: IO[bytes] = open(stdout_fd, "rb")  # noqa: SIM115 - closed by the log capture that reads it
        self.stderr: IO[bytes] = open(stderr_fd, "rb")  # noqa: SIM115
        self.returncode: int | None = None
        self._ending = ending

    def poll(self) -> int | None:
        """Its return code if it has ended, else None."""
        if self.returncode is None and self._ending.done.is_set():
            if self._ending.code is not None:
                self.returncode = self._ending.code
            elif not _alive(self.pid):  # its launcher died before it could tell
                self.returncode = UNKNOWN_EXIT
        return self.returncode

    def wait(self) -> int:
        """Wait for it to end; its return code (negative: the signal that killed it)."""
        self._ending.done.wait()
        self.returncode = self._code()
        return self.returncode

    def _code(self) -> int:
        if self._ending.code is not None:
            return self._ending.code
        while _alive(self.pid):  # its launcher died before it could tell: watch the pid instead
            time.sleep(GONE_CHECK_SECONDS)
        return UNKNOWN_EXIT


def _alive(pid: int) -> bool:
    """Whether ``pid`` still runs (an init that does not collect orphans leaves them as zombies: ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


class SupervisorLauncher:
    """This process's connection to its supervisor launcher, and the thread that reads the launcher's reports."""

    def __init__(self) -> None:
        own, theirs = socket.socketpair()
        with theirs:
            self._process = subprocess.Popen(
                # with site, in the scripts' environment: a script's process forked from it can run the script
                [sys.executable, LAUNCHER, str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                start_new_session=True,  # no terminal's signals: it ends when this process closes the socket
                env={**os.environ, **supervisor.SCRIPT_VARIABLES},  # what scripts get: theirs may then run forked
            )
        self._channel = own
        self._requests = threading.Lock()  # one request at a time: answers come in the order of requests
        self._answers: queue.Queue[tuple[int, _Ending] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._running: dict[int, _Ending] = {}
        self.lost = False
        threading.Thread(target=self._read_reports, name="forgeline-supervisor-launcher", daemon=True).start()

    def launch(self, command: Sequence[str], cwd: Path, env: Mapping[str, str], exit_status: Path,
               log_path: str) -> LaunchedSupervisor:
        """Have the launcher fork the supervisor of ``command``; returns once it can be stopped."""
        payload = marshal.dumps((list(command), str(cwd), dict(env), str(exit_status), log_path))
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        try:
            with self._requests:
                try:
                    socket.send_fds(self._channel, [HEADER.pack(len(payload))], [stdout_write, stderr_write])
                    self._channel.sendall(payload)
                except OSError as exc:
                    raise SupervisorLauncherError(f"the supervisor launcher is gone: {exc}") from exc
                try:
                    answer = self._answers.get()
                except BaseException:  # its answer would go to the next request: use a new launcher from now on
                    self.lost = True
                    raise
        except BaseException:
            os.close(stdout_read)
            os.close(stderr_read)
            raise
        finally:
            os.close(stdout_write)
            os.close(stderr_write)
        if answer is None:
            os.close(stdout_read)
            os.close(stderr_read)
            raise SupervisorLauncherError("the supervisor launcher could not start the job's supervisor")
        pid, ending = answer
        return LaunchedSupervisor(pid, stdout_read, stderr_read, ending)

    def _read_reports(self) -> None:
        pending = b""
        while True:
            try:
                chunk = self._channel.recv(64 * RECORD.size)
            except OSError:
                chunk = b""
            if not chunk:
                break
            pending += chunk
            while len(pending) >= RECORD.size:
                kind, pid, code = RECORD.unpack(pending[:RECORD.size])
                pending = pending[RECORD.size:]
                self._report(kind, pid, code)
        with self._lock:
            self.lost = True
            running, self._running = list(self._running.values()), {}
        for ending in running:
            ending.done.set()  # without a code: each waiter watches its supervisor's pid instead
        self._answers.put(None)

    def _report(self, kind: bytes, pid: int, code: int) -> None:
        if kind == b"S":
            ending = _Ending()
            with self._lock:
                self._running[pid] = ending
            self._answers.put((pid, ending))
        elif kind == b"F":
            self._answers.put(None)
        else:
            with self._lock:
                ended = self._running.pop(pid, None)
            if ended is not None:
                ended.code = code
                ended.done.set()


_launcher: list[tuple[int, SupervisorLauncher]] = []  # (the process it belongs to, its launcher)
_launcher_lock = threading.Lock()


def launcher() -> SupervisorLauncher:
    """This process's supervisor launcher, started on first use (again if the last one died)."""
    with _launcher_lock:
        if not _launcher or _launcher[0][0] != os.getpid() or _launcher[0][1].lost:
            _launcher[:] = [(os.getpid(), SupervisorLauncher())]
        return _launcher[0][1]


def prestart_supervisors() -> None:
    """Start this process's supervisor launcher now, if supervisors start through one.

    Its first spare supervisor, and that one's script process, are then forked while the caller prepares the job.
    """
    if LAUNCH_SUPERVISOR:
        launcher()


def start_supervisor(command: Sequence[str], *, cwd: Path, env: Mapping[str, str], exit_status: Path,
                     log_path: str) -> LaunchedSupervisor | subprocess.Popen[bytes]:
    """Start the supervisor of ``command`` in its own session, its output on pipes; returns once it can be stopped."""
    if LAUNCH_SUPERVISOR:
        try:
            return launcher().launch(command, cwd, env, exit_status, log_path)
        except SupervisorLauncherError:  # it died since the last job: once more, with a new one
            return launcher().launch(command, cwd, env, exit_status, log_path)
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
