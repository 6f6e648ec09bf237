"""The supervisor launcher: a small process that hands each job of its orchestrator to a supervisor forked ahead.

Run as ``python supervisor_launcher.py <socket-fd>`` (standard library only), once per orchestrator, by
``jobs/supervisor_start.py``, in the environment the orchestrator's scripts get. A job's supervisor then costs a
fork of this small, single-threaded process instead of a new interpreter (tens of milliseconds) or a fork of the
orchestrator (whose size and threads make every fork, and every page either side writes afterwards, expensive).
And that fork is not on the job's path: the launcher keeps one spare supervisor, forked before it is needed and
idle (leading its own process group, holding none of the launcher's descriptors) until the launcher passes it a
request, then forks the next spare while that job starts. The spare forks its script's process ahead as well,
and a ``python <file>.py`` script whose environment starts Python as this one started runs in that process,
without a new interpreter (``script_runner.py``); others are exec'd.

On the socket, the orchestrator sends a request per job: 8 bytes of length with the job's stdout and stderr
pipes attached (SCM_RIGHTS), then ``marshal`` of (command, cwd, env, exit-status file, log file). The launcher
passes the request on, as it came, to its spare and answers with records of :data:`RECORD` (kind, pid, code):
``S`` once the supervisor has the request and leads its own process group (so a stop reaches it; the launcher
has a session of its own, without a terminal), ``F`` if no supervisor could be forked, ``X`` with its exit code
when it has ended. The launcher exits when the orchestrator closes the socket (or dies), and its idle spare when
the launcher has gone; the supervisors it started carry on, and write their scripts' exit status as always.
"""

from __future__ import annotations

import gc
import marshal
import os
import select
import signal
import socket
import struct
import sys
from collections.abc import Iterable

if __package__:
    from forgeline.jobs import process_tree, script_runner, supervisor
else:  # run by path: the sibling files, without importing forgeline
    import process_tree  # type: ignore[no-redef]
    import script_runner  # type: ignore[no-redef]
    import supervisor  # type: ignore[no-redef]

RECORD = struct.Struct("!cii")
"""One answer to the orchestrator: kind (S started, F failed, X exited), supervisor pid, exit code."""
HEADER = struct.Struct("!Q")
"""Length of a request's payload, sent with the job's two pipes attached."""
CHILD_FAILED = 1
"""Exit code of a supervisor that failed before it could run its script."""
LAUNCHER_SIGNALS = (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM)
"""The signals whose handling the launcher changes (see :func:`serve`): a supervisor gets the defaults back."""


class Spare:
    """A supervisor forked ahead of its job: it waits, in its own process group, for the request on ``channel``."""

    def __init__(self, pid: int, channel: socket.socket) -> None:
        self.pid = pid
        self.channel = channel

    def take(self, fds: list[int], payload: bytes) -> bool:
        """Pass it a job's request (pipes and payload, as received); whether it took it (False: it had died)."""
        try:
            socket.send_fds(self.channel, [HEADER.pack(len(payload))], fds)
            self.channel.sendall(payload)
            return True
        except OSError:
            return False
        finally:
            self.channel.close()  # one job per spare; its end of the socket now tells it nothing more comes


def serve(channel: socket.socket) -> int:
    """Hand each request on ``channel`` to a spare supervisor and report it, until the orchestrator hangs up."""
    process_tree.prctl_function()  # loaded once here: the forked supervisors must not load a library
    # what is here now stays: a forked script's collections then neither scan it nor copy its pages
    gc.freeze()
    max_fd = os.sysconf("SC_OPEN_MAX")
    every_signal = signal.valid_signals()  # once: building the set costs more than the rest of a fork
    for number in LAUNCHER_SIGNALS[1:]:  # stops are for jobs; this ends when its orchestrator does
        signal.signal(number, signal.SIG_IGN)
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_read, False)
    os.set_blocking(wake_write, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # wakes the poll below through wake_write
    own_fds = (wake_read, wake_write)  # and the channel: a forked child lets go of all three
    poller = select.poll()
    poller.register(channel.fileno(), select.POLLIN)
    poller.register(wake_read, select.POLLIN)
    spare = fork_spare(max_fd, channel, own_fds, every_signal)
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
                pid = hand_over(request, spare, max_fd, channel, own_fds, every_signal)
                channel.sendall(RECORD.pack(b"F" if pid is None else b"S", pid or 0, 0))
                spare = fork_spare(max_fd, channel, own_fds, every_signal)  # the next job's, while this one starts
            except OSError:  # the orchestrator is gone (it need not read the last reports: jobs end without them)
                return 0


def _drained(fd: int) -> bool:
    try:
        return bool(os.read(fd, 512))
    except BlockingIOError:
        return False


def receive(channel: socket.socket) -> tuple[list[int], bytes] | None:
    """The next request: the job's pipes and its payload, still marshalled; None at the end."""
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
            for fd in fds:
                os.close(fd)
            return None
        payload += chunk
    return fds, bytes(payload)


def hand_over(request: tuple[list[int], bytes], spare: Spare | None, max_fd: int, channel: socket.socket,
              own_fds: Iterable[int], every_signal: Iterable[int]) -> int | None:
    """Give the request to ``spare`` (to a new one if it is gone); the supervisor's pid, None if none could fork."""
    fds, payload = request
    try:
        for _ in range(2):  # a spare that died meanwhile is replaced once
            if spare is None:
                spare = fork_spare(max_fd, channel, own_fds, every_signal)
                if spare is None:
                    return None
            taken, spare = spare, None
            if taken.take(fds, payload):
                return taken.pid
        return None
    finally:
        for fd in fds:
            os.close(fd)


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


def fork_spare(max_fd: int, channel: socket.socket, own_fds: Iterable[int],
               every_signal: Iterable[int] | None = None) -> Spare | None:
    """Fork a supervisor that waits for its job; None if it could not be forked (the next request tries again).

    The child lets go of ``channel`` and ``own_fds``, this process's own.
    """
    ours, theirs = socket.socketpair()
    # Signals wait until the child has reset the handlers: this process's must never run in it.
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, every_signal or signal.valid_signals())
    try:
        pid = os.fork()
        if pid == 0:
            # detached, not just closed: a script run in a process forked from the child (script_runner.py)
            # leaves through these frames, and a socket object closing its old number would close the script's
            for fd in (*own_fds, ours.detach(), channel.detach()):
                os.close(fd)
            wait_for_job(theirs, max_fd, mask)
        try:  # here as well as in the child, so the group exists before the orchestrator hears of it
            os.setpgid(pid, pid)
        except OSError:  # the child did it first, or has already ended
            pass
    except OSError:
        ours.close()
        return None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        theirs.close()
    return Spare(pid, ours)


def wait_for_job(channel: socket.socket, max_fd: int, mask: Iterable[int]) -> None:
    """In the forked spare: lead a process group, wait for the job's request, supervise the job, exit.

    It holds nothing of the launcher's while it waits (its standard streams are /dev/null), and exits quietly
    when the launcher goes without sending a job. A stop that comes before the supervisor handles SIGTERM ends
    it (the default action), as it did a supervisor started by path: the job then ends Stopped without its
    script having run. Only the script's process, forked from here, leaves otherwise (script_runner.RunHere).
    """
    code = CHILD_FAILED
    try:
        code = supervise_job(channel, max_fd, mask)
    except script_runner.RunHere:  # in the script's process: it leaves for the top of this program, which runs it
        channel.close()
        raise
    except BaseException as exc:  # noqa: BLE001 - whatever it is, the child must not return into the launcher
        try:
            os.write(2, f"[forgeline] the job's supervisor failed: {exc!r}\n".encode())
        except OSError:
            pass
    os._exit(code)


def supervise_job(channel: socket.socket, max_fd: int, mask: Iterable[int]) -> int:
    """The spare's work (see wait_for_job): the code it exits with."""
    os.setpgid(0, 0)
    signal.set_wakeup_fd(-1)
    for number in LAUNCHER_SIGNALS:  # the launcher's handlers and ignored stops are not the job's
        signal.signal(number, signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    os.close(null)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    # its fork is off the job's path too; a Python started with site, as this one was by supervisor_start,
    # can run the script in that forked process
    script = supervisor.WaitingScript(in_process=not sys.flags.no_site)
    request = receive(channel)
    channel.close()
    if request is None:  # the launcher has gone: no job will come (nor will the script's command)
        return 0
    fds, payload = request
    command, cwd, env, exit_status, log_path = marshal.loads(payload)
    os.chdir(cwd)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    close_all_but(script.descriptors, max_fd)
    return supervisor.supervise(exit_status, log_path, command, env, waiting=(script, cwd))


def close_all_but(keep: Iterable[int], max_fd: int) -> None:
    """Close every descriptor from 3 up to ``max_fd`` except those in ``keep``."""
    low = 3
    for fd in sorted(keep):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, max_fd)


def main(argv: list[str]) -> int:
    """Serve the socket whose descriptor is the only argument."""
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: supervisor_launcher.py <socket-fd>", file=sys.stderr)
        return 2
    with socket.socket(fileno=int(argv[0])) as channel:
        return serve(channel)


if __name__ == "__main__":
    here: script_runner.RunHere | None = None
    try:
        code = main(sys.argv[1:])
    except script_runner.RunHere as run:  # a script's process, forked from this one (supervisor.WaitingScript)
        here = run.with_traceback(None)
    if here is None:
        sys.exit(code)
    here.run()  # outside the handler: the script's own exceptions have no context of ours
