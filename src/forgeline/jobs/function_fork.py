"""A @step worker forked from the process that starts a pipeline, before that process's heavy imports.

A spawned worker (``python -m forgeline.jobs.function_worker``) pays an interpreter start and the imports of
forgeline's DSL before its first call. The starting process (``python pipeline.py``, ``forgeline run``) has all
of that loaded when ``pipeline.start()`` begins, so it forks the worker there instead (:func:`fork_function_worker`)
and *offers* it (:func:`offer`) to the orchestrator it is about to fork, which inherits the pipes; that
orchestrator's warm worker pool adopts it as its first idle worker (:func:`take_offered`). The starting
process then drops its own copies (:func:`withdraw`): a worker nobody adopted sees its request pipe close
and exits.

The worker is a grandchild of a small *keeper* process, itself a grandchild of the starting process (neither
stays the starter's child): the keeper waits for the worker and reports its pid, then its exit code, on a
status pipe, which is how the orchestrator learns how the worker ended (:class:`ForkedWorkerProcess`) although
it is not the worker's parent. The worker then leaves the starter behind: its own session, signal handlers
back to an interpreter's defaults, stdin and stdout on /dev/null, unbuffered standard streams, the
environment variables a spawned worker gets, and none of the starter's user modules, ``__main__``, exit
handlers or logging handlers. Its first message says where it serves (:func:`prepare_offered`: the
orchestrator's working folder, environment and log, which becomes its stderr between calls) — the same
state a worker spawned by that orchestrator would start in.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from dataclasses import dataclass
from typing import Any

from forgeline.jobs.function_protocol import read_message, write_message

WORKER_ENV = "FORGELINE_WORKER"
"""Set in every @step worker, so code can tell it runs inside one (and refuse to start pipelines there)."""
UNKNOWN_EXIT = 255
"""Return code of a forked worker whose end its keeper could not report (the keeper was killed)."""
_STATUS = struct.Struct("!ci")
"""A keeper's report on the status pipe: ``P`` and the worker's pid, then ``X`` and its exit code."""
_GONE_CHECK_SECONDS = 0.05
_SQLITE_HEADER = b"SQLite format 3\0"


@dataclass
class ForkedWorker:
    """The starting process's handle on a forked worker: its pipes, and the child to reap once it is withdrawn."""

    request_fd: int
    reply_fd: int
    status_fd: int
    child: int
    prepared: bool = False  # its first message, saying where it serves, was sent


_offered: list[ForkedWorker] = []


def fork_function_worker() -> ForkedWorker | None:
    """Fork a @step worker from this process now; None (nothing forked) where forking is not safe.

    Not safe: no ``os.fork``, other threads running (a lock one of them holds would stay locked in the
    worker), or an SQLite database open in this process (SQLite's per-process lock bookkeeping would be
    copied into the worker, where a step that opens the same database could close this process's files).
    """
    if not hasattr(os, "fork") or threading.active_count() > 1 or _sqlite_file_open():
        return None
    request_read, request_write = os.pipe()
    reply_read, reply_write = os.pipe()
    status_read, status_write = os.pipe()
    _flush_std_streams()  # or the worker would write out this process's buffered output again
    try:
        child = os.fork()
    except OSError:
        child = -1
    if child == 0:  # the intermediate child: starts the keeper and exits, so neither stays this process's child
        code = 1
        try:
            os.setsid()  # no terminal: a Ctrl-C meant for the starter never reaches the keeper or the worker
            for fd in (request_write, reply_read, status_read):
                os.close(fd)
            if os.fork() == 0:
                _keep(request_read, reply_write, status_write)
            code = 0
        finally:
            os._exit(code)
    for fd in (request_read, reply_write, status_write):
        os.close(fd)
    if child < 0:
        for fd in (request_write, reply_read, status_read):
            os.close(fd)
        return None
    return ForkedWorker(request_write, reply_read, status_read, child)


def offer(worker: ForkedWorker) -> None:
    """Make ``worker`` the one the next orchestrator forked from this process adopts."""
    _offered[:] = [worker]


def prepare_offered(cwd: str, stderr_path: str, env: dict[str, str]) -> None:
    """Tell the offered worker, if any, where it serves: the working folder, environment and log of the
    orchestrator about to be forked; only a prepared worker is adopted."""
    for worker in _offered:
        try:
            write_message(worker.request_fd, {"setup": {"cwd": cwd, "stderr": stderr_path, "env": env}})
        except OSError:  # it is gone: the orchestrator starts its own
            continue
        worker.prepared = True


def offered_descriptors() -> tuple[int, ...]:
    """The pipes (request, reply, status) of the worker on offer, for a process that launches on this one's behalf
    (the warm launcher) to offer it in turn; empty when none is."""
    return tuple(fd for worker in _offered[:1] for fd in (worker.request_fd, worker.reply_fd, worker.status_fd))


def take_offered() -> ForkedWorker | None:
    """The prepared worker this process inherited from its starter, now owned by the caller; else None."""
    taken = _offered[:1]
    _offered.clear()
    for worker in taken:
        if worker.prepared:
            return worker
        for fd in (worker.request_fd, worker.reply_fd, worker.status_fd):
            os.close(fd)
    return None


def withdraw(worker: ForkedWorker) -> None:
    """In the starting process, once the orchestrator is launched: close its copies of the worker's pipes and
    reap the intermediate child. A worker no orchestrator inherited sees its request pipe close and exits."""
    if _offered and _offered[0] is worker:
        _offered.clear()
    for fd in (worker.request_fd, worker.reply_fd, worker.status_fd):
        os.close(fd)
    try:
        os.waitpid(worker.child, 0)
    except ChildProcessError:
        pass


def worker_pid(worker: ForkedWorker) -> int | None:
    """Wait for the keeper's first report and return the worker's pid; None if it never started."""
    record = _read_record(worker.status_fd)
    return record[1] if record is not None and record[0] == b"P" else None


class ForkedWorkerProcess:
    """A forked worker as its adopter sees it: the part of ``subprocess.Popen`` that workers and jobs use.

    The adopter is not the worker's parent: the exit code comes from the worker's keeper, on the status pipe.
    """

    def __init__(self, pid: int, status_fd: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._status_fd = status_fd
        self._lock = threading.Lock()

    def poll(self) -> int | None:
        """Its return code if it has ended, else None."""
        with self._lock:
            if self.returncode is None:
                self._collect(0.0)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for it to end; its return code (negative: the signal that killed it).

        Raises ``subprocess.TimeoutExpired`` after ``timeout`` seconds, as ``Popen.wait`` does.
        """
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self._lock:
                if self.returncode is None:
                    remaining = _GONE_CHECK_SECONDS if deadline is None else deadline - time.monotonic()
                    self._collect(max(0.0, min(remaining, _GONE_CHECK_SECONDS)))
                if self.returncode is not None:
                    return self.returncode
            if deadline is not None and time.monotonic() >= deadline:
                import subprocess

                raise subprocess.TimeoutExpired(f"forked @step worker {self.pid}", timeout or 0.0)

    def _collect(self, timeout: float) -> None:
        """Read the keeper's report if it comes within ``timeout``; a keeper gone silent: watch the pid."""
        if self._status_fd < 0:  # the keeper is gone without a report: watch the pid instead
            if not _running(self.pid):
                self.returncode = UNKNOWN_EXIT
            elif timeout > 0:
                import time

                time.sleep(timeout)
            return
        import select

        readable, _, _ = select.select([self._status_fd], [], [], timeout)
        if not readable:
            return
        record = _read_record(self._status_fd)
        if record is not None and record[0] != b"X":
            return
        os.close(self._status_fd)
        self._status_fd = -1
        if record is not None:
            self.returncode = record[1]
        elif not _running(self.pid):
            self.returncode = UNKNOWN_EXIT


def _read_record(fd: int) -> tuple[bytes, int] | None:
    data = b""
    while len(data) < _STATUS.size:
        chunk = os.read(fd, _STATUS.size - len(data))
        if not chunk:
            return None
        data += chunk
    kind, value = _STATUS.unpack(data)
    return kind, value


def _running(pid: int) -> bool:
    """Whether ``pid`` still runs (an init that does not collect orphans leaves them as zombies: ended)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            state = stat.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state != b"Z"


# -- the keeper and the worker (forked processes that never return into the starter's code) ---------------------

def _keep(request_fd: int, reply_fd: int, status_fd: int) -> None:
    """The keeper: fork the worker, report its pid, wait for it, report its exit code, exit."""
    code = 1
    try:
        request_fd, reply_fd, status_fd = _only_descriptors((request_fd, reply_fd, status_fd))
        _default_signal_handlers()
        pid = os.fork()
        if pid == 0:
            os.close(status_fd)
            _serve(request_fd, reply_fd)
        os.close(request_fd)
        os.close(reply_fd)
        reported = _report(status_fd, b"P", pid)
        status = os.waitpid(pid, 0)[1]
        if reported:
            _report(status_fd, b"X", os.waitstatus_to_exitcode(status))
        code = 0
    except BaseException:  # noqa: BLE001 - the keeper must never return into the starter's code
        pass
    finally:
        os._exit(code)


def _report(status_fd: int, kind: bytes, value: int) -> bool:
    try:
        os.write(status_fd, _STATUS.pack(kind, value))
    except OSError:  # nobody listens any more (the starter withdrew it, no orchestrator adopted it)
        return False
    return True


def _serve(request_fd: int, reply_fd: int) -> None:
    """The worker: become what a spawned worker is, wait to be told where it serves, then serve its calls."""
    code = 1
    try:
        os.setsid()
        os.environ[WORKER_ENV] = "1"
        os.environ["PYTHONUNBUFFERED"] = "1"
        _fresh_standard_streams()
        from forgeline.jobs import function_worker

        _forget_starter_state([function_worker.__file__, str(request_fd), str(reply_fd)])
        setup = read_message(request_fd)
        if setup is None or "setup" not in setup:  # withdrawn without an orchestrator: nothing to serve
            code = 0
            return
        _settle(setup["setup"])
        # what every first call needs (its return value is stored), imported while the orchestrator starts
        import forgeline.store.artifacts  # noqa: F401

        function_worker.FunctionCallServer(request_fd, reply_fd).serve()
        code = 0
    except BaseException:  # noqa: BLE001 - the worker must never return into the starter's code
        try:
            import traceback

            traceback.print_exc()  # its stderr: the orchestrator's log, as a spawned worker's
        except BaseException:  # noqa: BLE001
            pass
    finally:
        try:
            import atexit

            atexit._run_exitfuncs()  # those its calls registered: the starter's were cleared
            _flush_std_streams()
        finally:
            os._exit(code)


def _settle(setup: dict[str, Any]) -> None:
    """Take the orchestrator's working folder and environment, and its log as stderr between calls."""
    os.chdir(setup["cwd"])
    os.environ.update(setup["env"])
    log_fd = os.open(setup["stderr"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 2)
    os.close(log_fd)


def _only_descriptors(keep: tuple[int, int, int]) -> tuple[int, int, int]:
    """Close every descriptor but ``keep`` (moved above 2 if needed) and put /dev/null on 0, 1 and 2."""
    import fcntl

    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD, 3) if fd < 3 else fd for fd in keep)
    try:
        open_fds = sorted({int(name) for name in os.listdir("/proc/self/fd")})
    except OSError:
        open_fds = []
    if open_fds:
        for fd in open_fds:
            if fd > 2 and fd not in moved:
                try:
                    os.close(fd)
                except OSError:
                    pass
    else:  # no /proc: close every number in between
        bounds = [2, *sorted(moved), os.sysconf("SC_OPEN_MAX")]
        for low, high in zip(bounds, bounds[1:]):
            os.closerange(low + 1, high)
    null_fd = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd != null_fd:
            os.dup2(null_fd, fd)
    if null_fd > 2:
        os.close(null_fd)
    return moved[0], moved[1], moved[2]


def _default_signal_handlers() -> None:
    """Handlers the starter installed go back to a fresh interpreter's (SIGINT raises KeyboardInterrupt,
    others their default action); ignored signals stay ignored, as they would across exec."""
    import signal

    try:
        signal.set_wakeup_fd(-1)
    except ValueError:  # not the main thread: no wakeup descriptor was set there either
        pass
    for number in signal.valid_signals():
        try:
            handler = signal.getsignal(number)
        except (OSError, ValueError):
            continue
        if callable(handler) and handler is not signal.default_int_handler:
            signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)


_inherited: list[Any] = []
"""What the worker took out of the starter's state: kept alive, so that nothing of the starter's is finalised in
the worker (a finaliser would act on files and connections that belong to the starter)."""


def _fresh_standard_streams() -> None:
    """Standard streams on descriptors 0-2, unbuffered as PYTHONUNBUFFERED makes a spawned worker's."""
    import io

    _inherited.extend([sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__])
    encoding = getattr(sys.__stdout__, "encoding", None) or "utf-8"
    stdin = open(0, encoding=encoding, closefd=False)  # noqa: SIM115 - for the process's life
    stdout = io.TextIOWrapper(open(1, "wb", buffering=0, closefd=False),  # noqa: SIM115
                              encoding=encoding, write_through=True)
    stderr = io.TextIOWrapper(open(2, "wb", buffering=0, closefd=False),  # noqa: SIM115
                              encoding=encoding, errors="backslashreplace", write_through=True)
    sys.stdin, sys.stdout, sys.stderr = stdin, stdout, stderr
    vars(sys).update(__stdin__=stdin, __stdout__=stdout, __stderr__=stderr)  # the originals, as a worker starts


def _forget_starter_state(argv: list[str]) -> None:
    """Drop what a spawned worker would not have: the starter's ``__main__`` and user modules (the function's
    code then loads from the execution's code snapshot), exit handlers, logging handlers, fault handler, argv."""
    import atexit
    import gc
    import types

    from forgeline.jobs.function_loading import is_user_module

    _inherited.append(sys.modules.get("__main__"))
    sys.modules["__main__"] = types.ModuleType("__main__")
    for name, module in list(sys.modules.items()):
        if is_user_module(name, module):
            _inherited.append(sys.modules.pop(name))
    atexit._clear()
    if "faulthandler" in sys.modules:
        import faulthandler

        faulthandler.disable()
    if "logging" in sys.modules:
        _reset_logging()
    _inherited.append(sys.argv)
    sys.argv = argv
    gc.freeze()  # the starter's objects stay out of every collection in the worker


def _reset_logging() -> None:
    """No handler, level or filter the starter configured: logging as an interpreter starts with it."""
    import logging

    loggers: list[Any] = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        if isinstance(logger, logging.Logger):
            _inherited.append(logger.handlers)
            logger.handlers = []
            logger.filters = []
            logger.setLevel(logging.NOTSET)
            logger.propagate = True
            logger.disabled = False
    logging.getLogger().setLevel(logging.WARNING)
    logging.disable(logging.NOTSET)


def _sqlite_file_open() -> bool:
    """Whether this process has an SQLite database file open (read through its descriptors, on Linux)."""
    if "_sqlite3" not in sys.modules:
        return False
    try:
        descriptors = os.listdir("/proc/self/fd")
    except OSError:
        return True  # cannot tell: assume the worst
    for name in descriptors:
        fd = int(name)
        try:
            if os.pread(fd, len(_SQLITE_HEADER), 0) == _SQLITE_HEADER:
                return True
        except OSError:  # not a regular file, or closed meanwhile
            continue
    return False


def _flush_std_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
