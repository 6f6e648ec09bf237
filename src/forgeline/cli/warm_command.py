"""``forgeline <command>`` run in a warm launcher (``engine/warm_launcher.py``): both sides.

The ``forgeline`` console script would spend most of a short command importing Typer, rich, pydantic,
SQLAlchemy and the engine. When a launcher listens, the script (:func:`run_in_launcher`, light) sends it its
arguments, environment, working folder and standard input, output and error instead; the launcher's child takes
them on and runs the command (:func:`serve_command`), first telling the script its pid. The script passes on the
signals it gets (Ctrl-C, SIGTERM, a closed terminal's SIGHUP) to that process and exits with the command's exit
code (or dies of the signal that killed it); if the script is killed outright, the command is too.

When none listens, the script starts one in the background and runs this command itself: the next command finds
it. Long-running commands (``server``, ``serve``) always run in the script's own process, as does everything
when FORGELINE_WARM_LAUNCHER=0.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import signal
import socket
import sys
import threading
from typing import Any

from forgeline.engine import warm_protocol as protocol

IN_PROCESS = frozenset({"server", "serve"})
"""Commands that run in the script's own process: servers, whose process is what a service manager watches."""


def run_in_launcher(argv: list[str]) -> int | None:
    """Run ``forgeline`` with ``argv`` (``sys.argv``) in a warm launcher: its exit code; None to run it here."""
    if not protocol.warm_launcher_enabled() or _command(argv[1:]) in IN_PROCESS:
        return None
    place = protocol.launcher_place()
    if place is None or not all(_open(fd) for fd in (0, 1, 2)):
        return None
    connection = protocol.connect(place)
    if connection is None:
        try:
            protocol.start_launcher(place, wait=False)
        except ValueError as exc:  # FORGELINE_WARM_LAUNCHER_IDLE_SECONDS
            print(f"error: {exc}", file=sys.stderr)
            return 1
        return None
    with connection:
        try:
            protocol.send_message(connection, {"kind": "command", **protocol.requester_state((0, 1, 2))}, [0, 1, 2])
            started, _ = protocol.receive_message(connection)
        except (OSError, EOFError):  # nothing ran: a launcher on its way out
            return None
        return _relay(connection, started["pid"])


def _relay(connection: socket.socket, pid: int) -> int:
    """Pass signals on to ``pid`` until its exit code arrives; end as it did when it died without one."""
    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        forwarded.append(signum)
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for signum in protocol.SIGNALS:  # ignored ones too: the command ignores them likewise unless it handles them itself
        signal.signal(signum, forward)
    try:
        ended, _ = protocol.receive_message(connection)
        return int(ended["exit"])
    except (OSError, EOFError):
        if forwarded:  # it died of a signal it was passed: so does this process
            signal.signal(forwarded[-1], signal.SIG_DFL)
            os.kill(os.getpid(), forwarded[-1])
        print(f"forgeline: the process running this command (pid {pid}) ended without an exit code",
              file=sys.stderr)
        return 1


def serve_command(connection: socket.socket, request: dict[str, Any], _extra: list[int]) -> int:
    """In a launcher's child that took on the script: run its command as the script would, and report."""
    protocol.send_message(connection, {"pid": os.getpid()})
    _die_with_script(connection)
    os.register_at_fork(after_in_child=connection.close)  # an orchestrator it forks keeps nothing of the script's
    from forgeline.cli.main import main

    code = main()
    # What the interpreter's shutdown does that a command can see: wait for its threads, run its exit
    # functions, flush its output.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        protocol.send_message(connection, {"exit": code})
    except OSError:
        pass  # the script is gone
    return code


def _die_with_script(connection: socket.socket) -> None:
    """SIGKILL this process when the script's end of ``connection`` closes without an exit code coming back: the
    script was killed (the one signal it cannot pass on), and the command ends with it, as it would have had it
    run in the script's own process."""

    def check(_signum: int, _frame: object) -> None:
        try:
            gone = connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return
        except OSError:
            gone = True
        if gone:
            os.kill(os.getpid(), signal.SIGKILL)

    signal.signal(signal.SIGIO, check)
    fcntl.fcntl(connection.fileno(), fcntl.F_SETOWN, os.getpid())
    fcntl.fcntl(connection.fileno(), fcntl.F_SETFL, fcntl.fcntl(connection.fileno(), fcntl.F_GETFL) | os.O_ASYNC)


def _command(args: list[str]) -> str | None:
    """The command named by ``args`` (the first that is not an option)."""
    return next((arg for arg in args if not arg.startswith("-")), None)


def _open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
