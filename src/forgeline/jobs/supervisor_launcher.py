"""The supervisor launcher: a small process that forks one job supervisor per request of its orchestrator.

Run as ``python -S supervisor_launcher.py <socket-fd>`` (standard library only), once per orchestrator, by
``jobs/supervisor_start.py``. A job's supervisor then costs a fork of this small, single-threaded process
instead of a new interpreter (tens of milliseconds) or a fork of the orchestrator (whose size and threads make
every fork, and every page either side writes afterwards, expensive).

On the socket, the orchestrator sends a request per job: 8 bytes of length with the job's stdout and stderr
pipes attached (SCM_RIGHTS), then ``marshal`` of (command, cwd, env, exit-status file, log file). The launcher
answers with records of :data:`RECORD` (kind, pid, code): ``S`` once the supervisor leads its own process group
(so a stop reaches it; the launcher has a session of its own, without a terminal), ``F`` if it could not be
forked, ``X`` with its exit code when it has ended. The launcher exits when the orchestrator closes the socket
(or dies); the supervisors it started carry on, and write their scripts' exit status as always.
"""

from __future__ import annotations

import marshal
import os
import select
import signal
import socket
import struct
import sys
from collections.abc import Iterable

if __package__:
    from forgeline.jobs import process_tree, supervisor
else:  # run by path under -S: the sibling files, without importing forgeline
    import process_tree  # type: ignore[no-redef]
    import supervisor  # type: ignore[no-redef]

RECORD = struct.Struct("!cii")
"""One answer to the orchestrator: kind (S started, F failed, X exited), supervisor pid, exit code."""
HEADER = struct.Struct("!Q")
"""Length of a request's payload, sent with the job's two pipes attached."""
CHILD_FAILED = 1
"""Exit code of a supervisor that failed before it could run its script."""
LAUNCHER_SIGNALS = (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM)
"""The signals whose handling the launcher changes (see :func:`serve`): a supervisor gets the defaults back."""


def serve(channel: socket.socket) -> int:
    """Fork a supervisor per request on ``channel`` and report it, until the orchestrator hangs up."""
    process_tree.prctl_function()  # loaded once here: the forked supervisors must not load a library
    max_fd = os.sysconf("SC_OPEN_MAX")
    every_signal = signal.valid_signals()  # once: building the set costs more than the rest of a fork
    for number in LAUNCHER_SIGNALS[1:]:  # stops are for jobs; this ends when its orchestrator does
        signal.signal(number, signal.SIG_IGN)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the poll below through wake_write
    poller = select.poll()
    poller.register(channel.fileno(), select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    while True:
        for fd, _ in poller.poll():
            try:
                if fd == wake_read:
                    while _drained(wake_read):
                        pass
                    report_exits(channel)
                    continue
                request = receive(channel)
                if request is None:
                    return 0
                fds, job = request
                pid = launch(job, fds, max_fd, (channel.fileno(), wake_read, wake_write), every_signal)
                channel.sendall(RECORD.pack(b"F" if pid is None else b"S", pid or 0, 0))
            except OSError:  # the orchestrator is gone (it need not read the last reports: jobs end without them)
                return 0


def _drained(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def receive(channel: socket.socket) -> tuple[list[int], tuple[list[str], str, dict[str, str], str, str]] | None:
    """The next request: the job's pipes and (command, cwd, env, exit-status file, log file); None at the end."""
    header, fds, _, _ = socket.recv_fds(channel, HEADER.size, 2)
    if len(header) < HEADER.size:
        for fd in fds:
            os.close(fd)
        return None
    (length,) = HEADER.unpack(header)
    payload = bytearray()
    while len(payload) < length:
        chunk = channel.recv(min(length - len(payload), 1 << 20))
        if not chunk:
            return None
        payload += chunk
    return fds, marshal.loads(bytes(payload))


def report_exits(channel: socket.socket) -> None:
    """Collect every supervisor that has ended and tell the orchestrator its exit code."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        channel.sendall(RECORD.pack(b"X", pid, os.waitstatus_to_exitcode(status)))


def launch(job: tuple[list[str], str, dict[str, str], str, str], fds: list[int], max_fd: int,
           own_fds: Iterable[int], every_signal: Iterable[int] | None = None) -> int | None:
    """Fork the job's supervisor; its pid (already its process group), or None if it could not be forked."""
    # Signals wait until the child has reset the handlers: this process's must never run in it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, every_signal or signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            for fd in own_fds:
                os.close(fd)
            supervise_forked(job, (fds[0], fds[1]), max_fd, mask)
        try:  # here as well as in the child, so the group exists before the orchestrator hears of it
            os.setpgid(pid, pid)
        except OSError:  # the child did it first, or has already ended
            pass
    except OSError:
        pid = None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for fd in fds:
            os.close(fd)
    return pid


def supervise_forked(job: tuple[list[str], str, dict[str, str], str, str], fds: tuple[int, int],
                     max_fd: int, mask: Iterable[int]) -> None:
    """In the forked child: lead a process group with only the job's descriptors, supervise the job, exit.

    A stop that comes before the supervisor handles SIGTERM ends it (the default action), as it did a
    supervisor started by path: the job then ends Stopped without its script having run.
    """
    command, cwd, env, exit_status, log_path = job
    code = CHILD_FAILED
    try:
        os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        for number in LAUNCHER_SIGNALS:  # the launcher's handlers and ignored stops are not the job's
            signal.signal(number, signal.SIG_DFL)
        os.chdir(cwd)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.closerange(3, max_fd)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        code = supervisor.supervise(exit_status, log_path, command, env)
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the child must not return into the launcher
        try:
            os.write(2, f"[forgeline] the job's supervisor failed: {exc!r}\n".encode())
        except OSError:
            pass
    finally:
        os._exit(code)


def main(argv: list[str]) -> int:
    """Serve the socket whose descriptor is the only argument."""
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: supervisor_launcher.py <socket-fd>", file=sys.stderr)
        return 2
    with socket.socket(fileno=int(argv[0])) as channel:
        return serve(channel)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
