"""The warm transform server: one process per user and Python environment that forks batch transform workers warm.

``python -m forgeline.jobs.transform_server --forgeline-shared-server <socket> <idle-seconds>``, started by the
first transform job that finds nobody listening (``transform_warm.py``). It detaches at once, listens on the
socket and, per connection, forks a *host* for that job: the host takes the job's standard output and error, folder,
environment and ``sys.path``, runs the transform with workers forked from itself, and answers the job with the
records per file or the exception. Forking is the point: the server has imported what the models' code imported in
earlier jobs' workers (the workers tell it through a pipe: modules of installed packages and of the standard
library only, never the job's own code), so a worker starts without importing the framework again and loads the
model in the time unpickling takes.

The host leads a process group of its own and ends it, workers and all, as soon as the job's connection closes:
a job that is stopped or killed takes its workers with it, though they are not below it. The server exits when no
job has used it for ``<idle-seconds>``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import select
import signal
import socket
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PR_SET_PDEATHSIG = 1
LEARN_LINE_BYTES = 4096
"""Writes to the learning pipe stay below PIPE_BUF, so lines of concurrent workers never interleave."""
PROXY_PREFIXES = ("forgeline_inference_", "__main__", "__mp_main__")


def main(argv: list[str]) -> int:
    """Detach, then serve the socket named on the command line until it has been idle long enough."""
    if len(argv) != 3:
        print("usage: transform_server --forgeline-shared-server <socket> <idle-seconds>", file=sys.stderr)
        return 2
    address, idle_seconds = Path(argv[1]), float(argv[2])
    if os.fork():  # the job that started it returns at once; this process carries on, re-parented
        os._exit(0)
    search_path = os.environ.pop("FORGELINE_TRANSFORM_SYS_PATH", "")
    if search_path:
        sys.path[:] = search_path.split(os.pathsep)
    listener = bind(address)
    if listener is None:  # another job started one first
        return 0
    bound = os.stat(address).st_ino
    try:
        TransformServer(listener, address, idle_seconds).serve()
    finally:
        with _folder_locked(address), contextlib.suppress(OSError):
            if os.stat(address).st_ino == bound:  # not a successor's socket
                os.unlink(address)
        listener.close()
    return 0


@contextlib.contextmanager
def _folder_locked(address: Path) -> Iterator[None]:
    """Hold the lock of the sockets' folder: binding and removing a socket never interleave."""
    import fcntl

    folder = os.open(address.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)


def bind(address: Path) -> socket.socket | None:
    """The listening socket at ``address``; None if a live server holds it (a stale socket file is replaced)."""
    with _folder_locked(address):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(address))
            return None
        except OSError:
            pass
        finally:
            probe.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(address)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(address))
        listener.listen(64)
        return listener


class TransformServer:
    """Accepts jobs, forks a host per job, imports what workers report, exits when idle."""

    def __init__(self, listener: socket.socket, address: Path, idle_seconds: float) -> None:
        self.listener = listener
        self.address = address
        self.idle_seconds = idle_seconds
        self.hosts: set[int] = set()
        self.learn_read, self.learn_write = os.pipe()
        self.learned: set[str] = set()
        self.pending = b""

    def serve(self) -> None:
        """Until idle: fork a host per connection, import what the workers learned, collect ended hosts."""
        from forgeline.jobs import transform  # the code every host runs, imported once here

        del transform
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        os.set_blocking(wake_read, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        poller = select.poll()
        for fd in (self.listener.fileno(), self.learn_read, wake_read):
            poller.register(fd, select.POLLIN)
        idle_since = time.monotonic()
        while True:
            if self.hosts:
                idle_since = time.monotonic()
            remaining = self.idle_seconds - (time.monotonic() - idle_since)
            if remaining <= 0 and not self.hosts:
                return
            # what workers learned first: a job that connects after an earlier one ended finds it imported
            for fd, _ in sorted(poller.poll(max(1, int(remaining * 1000))), key=lambda e: e[0] != self.learn_read):
                if fd == self.listener.fileno():
                    self.accept(own=(wake_read, wake_write))
                elif fd == self.learn_read:
                    self.learn(os.read(self.learn_read, 65536))
                else:
                    with contextlib.suppress(BlockingIOError):
                        while os.read(wake_read, 512):
                            pass
                    self.collect()

    def accept(self, own: tuple[int, int]) -> None:
        """Fork the host of the job on the next connection."""
        try:
            channel, _ = self.listener.accept()
        except OSError:
            return
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                signal.set_wakeup_fd(-1)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (*own, self.learn_read):
                    os.close(fd)
                self.listener.close()
                code = host(channel, self.learn_write)
            finally:
                os._exit(code)
        channel.close()
        self.hosts.add(pid)

    def collect(self) -> None:
        """Collect the hosts that have ended."""
        while self.hosts:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.hosts.clear()
                return
            if pid == 0:
                return
            self.hosts.discard(pid)

    def learn(self, data: bytes) -> None:
        """Import the modules workers reported (once each): the next jobs' workers find them imported."""
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        for name in (line.decode() for line in lines if line):
            if name in self.learned:
                continue
            self.learned.add(name)
            with contextlib.suppress(BaseException):
                importlib.import_module(name)


def host(channel: socket.socket, learn_fd: int) -> int:
    """In the forked host: take the job, run it on workers forked from here, answer; the exit code of the host."""
    from forgeline.jobs import transform_warm

    os.setpgid(0, 0)
    header, fds, _, _ = socket.recv_fds(channel, transform_warm.HEADER.size, 2)
    payload = transform_warm._exactly(channel, transform_warm.HEADER.unpack(header)[0]) \
        if len(header) == transform_warm.HEADER.size else None
    if payload is None or len(fds) != 2:
        return 1
    import pickle

    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(fds[0], 1)
    os.dup2(fds[1], 2)
    for fd in fds:
        os.close(fd)
    channel.sendall(transform_warm.ACCEPTED)
    watched = channel.dup()
    threading.Thread(target=_end_with_job, args=(watched,), daemon=True).start()
    answer: Any
    try:
        from forgeline.jobs.transform import transform_with_pool

        request = pickle.loads(payload)
        enter_job(request)
        # the work after the job's import path is in place: its factory may come from the job's own modules
        source, target, factory, settings = pickle.loads(request["work"])
        answer = transform_with_pool(Path(source), Path(target), factory, settings, "fork", _init_warm_worker,
                                     (factory, learn_fd, (channel.fileno(), watched.fileno())))
    except BaseException as exc:  # noqa: BLE001 - the job raises it
        answer = _picklable(exc)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        transform_warm.send(channel, answer)
    return 0


def enter_job(request: dict[str, Any]) -> None:
    """Take on the job's folder, environment and import path."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[:] = request["sys_path"]
    importlib.invalidate_caches()  # the server may have looked into these folders long before they changed


def _end_with_job(channel: socket.socket) -> None:
    """Wait for the job's connection to close (the job ended, or was killed); then end this host and its workers."""
    with contextlib.suppress(OSError):
        while channel.recv(1):
            pass
    os.killpg(0, signal.SIGKILL)


def _picklable(exc: BaseException) -> BaseException:
    import pickle

    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - its type and message are what the job needs
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _init_warm_worker(factory: Callable[[], Any], learn_fd: int, job_fds: tuple[int, ...]) -> None:
    """Load the model in a forked worker, then tell the server which installed modules loading it imported.

    The worker dies with its host, and lets go of the host's connection to the job: a host that dies then closes
    it for good, and the job hears of it.
    """
    from forgeline.jobs import process_tree
    from forgeline.jobs.transform_worker import _init_worker

    process_tree.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for fd in job_fds:
        with contextlib.suppress(OSError):
            os.close(fd)
    before = set(sys.modules)
    _limit_threads()
    _init_worker(factory)
    report_modules(sorted(set(sys.modules) - before), learn_fd)


def _limit_threads() -> None:
    """Apply the job's thread variables to numeric libraries the server loaded before they were set."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    if not value.isdigit() or "numpy" not in sys.modules:
        return
    with contextlib.suppress(Exception):
        import threadpoolctl

        threadpoolctl.threadpool_limits(int(value))


def installed(name: str) -> bool:
    """Whether module ``name`` comes from an installed package or the standard library (not the job's own code)."""
    if name.startswith(PROXY_PREFIXES):
        return False
    module = sys.modules.get(name)
    origin = getattr(getattr(module, "__spec__", None), "origin", None)
    if not isinstance(origin, str):
        return False
    if origin in ("built-in", "frozen"):
        return True
    paths = sysconfig.get_paths()
    roots = tuple({paths[key] for key in ("purelib", "platlib", "stdlib", "platstdlib") if key in paths})
    return origin.startswith(roots)


def report_modules(names: list[str], learn_fd: int) -> None:
    """Send the server the installed modules among ``names``, in writes that never interleave with others'."""
    block = b""
    for name in (n for n in names if installed(n)):
        line = name.encode() + b"\n"
        if len(block) + len(line) > LEARN_LINE_BYTES:
            _write(learn_fd, block)
            block = b""
        block += line
    _write(learn_fd, block)


def _write(fd: int, data: bytes) -> None:
    with contextlib.suppress(OSError):
        if data:
            os.write(fd, data)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
