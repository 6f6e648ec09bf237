"""`forgeline ...` as a real process that skips the interpreter's start-up: forked from a process that imported it.

Starting ``python -m forgeline.cli.main`` pays the interpreter and the imports of SQLAlchemy, rich, typer and
pydantic (about a second, several on a loaded machine) before the command does anything; the suite runs
hundreds of commands. A fork server imports the CLI once; each command is a fresh child forked from it that
takes the test's stdin (/dev/null), stdout and stderr files, working directory, environment and arguments,
runs ``forgeline.cli.main.main`` and exits with its code through the interpreter's normal shutdown. The
command is still a separate process with its own pid, files, environment and exit status, as
``subprocess.run`` would give.

Run as a script, this module is the server: ``python forked_cli.py <control fd>``.
"""

from __future__ import annotations

import atexit
import json
import locale
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from typing import Any

# A child's interpreter was set up with the server's environment: a command whose environment would change how
# Python starts (its paths, encodings, hash seed, warnings, temporary folder) runs as a plain subprocess instead.
_START_UP_PREFIXES = ("PYTHON", "LC_", "LANG", "TMPDIR", "TEMP", "TMP")
# Imported once by the server, so that no command pays for them: the CLI's every command group and what they use.
_PRELOAD = ("forgeline.cli.main", "forgeline.cli.context", "forgeline.cli.output", "forgeline.cli.run",
            "forgeline.cli.executions", "forgeline.cli.logs", "forgeline.cli.pipelines", "forgeline.cli.models",
            "forgeline.cli.reports", "forgeline.cli.gc", "forgeline.cli.metrics", "forgeline.cli.schedules",
            "forgeline.cli.triggers", "forgeline.cli.alarms", "forgeline.cli.tokens", "forgeline.cli.endpoints",
            "forgeline.engine.runtime", "forgeline.store.metadata.sql_store", "forgeline.store.metadata.migrate",
            "alembic.command", "alembic.script", "alembic.runtime.migration")
# Also imported when installed: `models compare --data` and `reports` import scikit-learn and matplotlib (seconds),
# `server` and `serve` their web framework.
_PRELOAD_IF_INSTALLED = ("forgeline.reports.comparison", "forgeline.cli.server", "forgeline.cli.serve")
_MAX_MESSAGE = 1 << 20


# -- the server (a process of its own) ---------------------------------------------------------------------------

def _serve(control: socket.socket) -> int:
    """Fork one child per request until the client closes the control socket; return a child's exit code."""
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_write)
    replies: dict[int, socket.socket] = {}
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_read, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select(timeout=1.0):
            if key.fileobj is control:
                message, fds, _flags, _address = socket.recv_fds(control, _MAX_MESSAGE, 4)
                if not message:
                    return 0  # the client is gone
                reply = socket.socket(fileno=fds[0])
                pid = os.fork()
                if pid == 0:
                    signal.set_wakeup_fd(-1)
                    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                    selector.close()
                    for fd in (wake_read, wake_write):
                        os.close(fd)
                    control.close()
                    for other in (reply, *replies.values()):  # other commands' ends are none of its business
                        other.close()
                    return _run_command(json.loads(message), fds[1:])
                for fd in fds[1:]:
                    os.close(fd)
                try:
                    reply.sendall(f"{pid}\n".encode())
                except OSError:
                    pass  # the client is gone; the child is still reaped
                replies[pid] = reply
            else:
                try:
                    os.read(wake_read, 4096)
                except BlockingIOError:
                    pass
        _reap(replies)


def _reap(replies: dict[int, socket.socket]) -> None:
    """Send each ended child's exit code (negative: the signal that killed it) to its client."""
    while replies:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        reply = replies.pop(pid, None)
        if reply is not None:
            try:
                reply.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            except OSError:
                pass  # the client gave up on it
            reply.close()


def _run_command(request: dict[str, Any], fds: list[int]) -> int:
    """In the forked child: take the command's stdio, folder and environment, run it, return its exit code."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    from forgeline.cli import main as cli_main

    sys.path[0] = os.getcwd()  # as `python -m` puts it
    sys.argv = [cli_main.__file__, *request["args"]]
    code = cli_main.main(request["args"])
    # What the interpreter's shutdown does that a command can see: wait for its threads, run its atexit
    # functions, flush its output. Tearing down every preloaded module would only copy their memory.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


def _server_main(control_fd: int) -> int:
    import importlib

    for name in _PRELOAD:
        importlib.import_module(name)
    for name in _PRELOAD_IF_INSTALLED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the command reports what is missing, as it would without the server
    if threading.active_count() != 1:  # forking a process with threads could copy a held lock into the child
        print(f"a preloaded module started a thread: {threading.enumerate()}", file=sys.stderr)
        return 1
    control = socket.socket(fileno=control_fd)
    control.sendall(b"ready")
    return _serve(control)


# -- the client (in the test process) ----------------------------------------------------------------------------

class ForkServer:
    """The test process's connection to its fork server, started on first use and stopped when the process ends."""

    _instance: ForkServer | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self._env = {k: v for k, v in os.environ.items() if not k.startswith("FORGELINE_")}
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._process = subprocess.Popen([sys.executable, __file__, str(theirs.fileno())], pass_fds=[theirs.fileno()],
                                         env=self._env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         cwd="/")
        theirs.close()
        self._control = ours
        self._send_lock = threading.Lock()
        ours.settimeout(300)
        if ours.recv(16) != b"ready":
            raise RuntimeError(f"the CLI fork server did not start (exit {self._process.wait(60)})")
        ours.settimeout(None)
        atexit.register(self.close)

    @classmethod
    def shared(cls) -> ForkServer:
        """This process's fork server."""
        with cls._instance_lock:
            if cls._instance is None or cls._instance._process.poll() is not None:  # none yet, or it died
                cls._instance = cls()
            return cls._instance

    def serves(self, env: Mapping[str, str]) -> bool:
        """Whether a child forked from the server starts as ``python`` would with ``env``."""
        keys = {k for k in (*env, *self._env) if k.startswith(_START_UP_PREFIXES)}
        return all(env.get(k) == self._env.get(k) for k in keys)

    def start(self, args: Sequence[str], cwd: str, env: Mapping[str, str], stdout: int, stderr: int) -> ForkedProcess:
        """Start ``forgeline *args`` in a forked child writing to the file descriptors ``stdout`` and ``stderr``."""
        request = json.dumps({"args": list(args), "cwd": os.path.abspath(cwd), "env": dict(env)}).encode()
        mine, theirs = socket.socketpair()
        with theirs, open(os.devnull, "rb") as stdin, self._send_lock:
            socket.send_fds(self._control, [request], [theirs.fileno(), stdin.fileno(), stdout, stderr])
        return ForkedProcess(["forgeline", *args], mine)

    def run(self, args: Sequence[str], cwd: str, env: Mapping[str, str],
            timeout: float) -> subprocess.CompletedProcess[str]:
        """Run ``forgeline *args`` in a forked child; like ``subprocess.run(..., capture_output=True, text=True)``."""
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            process = self.start(args, cwd, env, out.fileno(), err.fileno())
            try:
                code = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(60)
                raise subprocess.TimeoutExpired(process.args, timeout, _text(out), _text(err)) from None
            return subprocess.CompletedProcess(process.args, code, _text(out), _text(err))

    def close(self) -> None:
        """Stop the server (children still running are left to finish)."""
        self._control.close()
        try:
            self._process.wait(30)
        except subprocess.TimeoutExpired:
            self._process.kill()


class ForkedProcess:
    """A command running in a forked child, handled like a ``subprocess.Popen``: pid, poll, wait, signals."""

    def __init__(self, args: list[str], replies: socket.socket) -> None:
        self.args = args
        self.returncode: int | None = None
        self.stdout: Any = None  # the reading end of its output when the caller asked for a pipe
        self._replies = replies
        self._received = b""
        replies.settimeout(60)
        self.pid = int(self._read_line())

    def poll(self) -> int | None:
        """The exit code if the command has ended, else None."""
        if self.returncode is None:
            self._replies.setblocking(False)
            try:
                self._set_returncode(self._read_line())
            except BlockingIOError:
                pass
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end (subprocess.TimeoutExpired after ``timeout`` seconds); the exit code."""
        if self.returncode is None:
            self._replies.settimeout(timeout)
            try:
                self._set_returncode(self._read_line())
            except TimeoutError:
                raise subprocess.TimeoutExpired(self.args, timeout or 0) from None
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the command, unless it has already ended."""
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL."""
        self.send_signal(signal.SIGKILL)

    def _read_line(self) -> str:
        """The next line the server sent about this command (RuntimeError when the server ended first)."""
        while b"\n" not in self._received:
            chunk = self._replies.recv(64)
            if not chunk:
                raise RuntimeError("the CLI fork server ended while running a command")
            self._received += chunk
        line, _, self._received = self._received.partition(b"\n")
        return line.decode()

    def _set_returncode(self, line: str) -> None:
        self.returncode = int(line)
        self._replies.close()


def _text(file: Any) -> str:
    """A captured stream as ``subprocess.run(text=True)`` decodes it."""
    file.seek(0)
    data = file.read().decode(locale.getpreferredencoding(False))
    return data.replace("\r\n", "\n").replace("\r", "\n")


if __name__ == "__main__":
    sys.exit(_server_main(int(sys.argv[1])))
