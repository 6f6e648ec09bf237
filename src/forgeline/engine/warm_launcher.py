"""The warm launcher: a resident process with the engine imported that starts executions for ``python pipeline.py``.

A pipeline file run on its own pays for importing the engine, the stores and SQLAlchemy (most of a short run's
time) before anything runs. The first ``pipeline.start()`` of a process that has not imported the engine starts
this launcher in the background (``engine/warm_start.py``) and waits until it listens; that start and every later
one, from any process of the same user on the same forgeline, hand the launcher their request instead. For each,
the launcher forks a child that takes on the starter's environment, working folder, umask, ``sys.path``,
``sys.argv``, standard output and error, and @step worker, and records the execution exactly as the starter
would have (``record_start``); it replies with the execution's id and the read end of its end notice, leaves the
launcher's session, and becomes the execution's orchestrator, as a forked one would (``become_orchestrator``).

It keeps the metadata stores its children asked for opened, their connections closed (``engine/kept_stores.py``):
it holds no database connection and runs no thread, so forking it is safe. It exits after
FORGELINE_WARM_LAUNCHER_IDLE_SECONDS (default 900) without a request, or when its socket is removed or taken.

    python -m forgeline.engine.warm_launcher <socket> <ready-fd> <idle-seconds>
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import os
import select
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from typing import Any

from forgeline.engine.kept_stores import KeptStores
from forgeline.engine.warm_protocol import BUSY, READY, SIGNALS, LauncherPlace, receive_message, send_message
from forgeline.jobs.process_tree import reap_children
from forgeline.startup import bulk_imports

PRELOADED = (
    "forgeline.engine.launch",
    "forgeline.engine.orchestrator",
    "forgeline.executors.futures",
    "forgeline.executors.local",
    "forgeline.executors.worker_pool",
    "forgeline.jobs.processing",
    "forgeline.jobs.runners",
)
"""What a start and its orchestrator import, paid once here, before the launcher says it is ready."""
PRELOADED_LATER = (
    "forgeline.cli.main",
    "forgeline.cli.context",
    "forgeline.cli.output",
    "forgeline.cli.run",
    "forgeline.cli.executions",
    "forgeline.cli.logs",
    "forgeline.cli.metrics",
    "forgeline.cli.pipelines",
    "forgeline.cli.models",
    "forgeline.store.metadata.migrate",
)
"""What the commands import, paid once here between the first requests (a start waiting is served first)."""
HANDLERS = {
    "start": "forgeline.engine.warm_launcher:serve_start",
    "command": "forgeline.cli.warm_command:serve_command",
}
"""What serves each kind of request, named ``module:function`` (an edge registers its own by name here)."""
KEPT_STORES = KeptStores()
"""The stores this launcher keeps opened for its children (see ``engine/kept_stores.py``)."""


def serve(socket_path: str, ready_fd: int, idle: float) -> int:
    """Take the place's lock, import the engine, listen on ``socket_path`` and serve requests until idle."""
    place = LauncherPlace.of_socket(socket_path)
    lock = os.open(place.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        _tell(ready_fd, BUSY)
        return 0
    with bulk_imports():
        for module in PRELOADED:
            importlib.import_module(module)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)  # a launcher that was killed left it; we hold the lock, so it is nobody's
    listener.bind(socket_path)
    listener.listen(64)
    bound = os.stat(socket_path).st_ino
    pid_path = place.pid_file
    with open(pid_path, "w", encoding="ascii") as handle:
        handle.write(f"{os.getpid()}\n")
    # children are collected as they end, so their CPU time counts as this process's
    signal.signal(signal.SIGCHLD, lambda _signum, _frame: reap_children())
    signal.signal(signal.SIGTERM, _stop)
    asked = KEPT_STORES.listen()
    _tell(ready_fd, READY)
    listener.setblocking(False)
    # between requests, one piece at a time: the commands' imports, then the stores children asked to keep
    later: list[Callable[[], object]] = [partial(importlib.import_module, name) for name in PRELOADED_LATER]
    try:
        while True:
            ready = select.select([listener.fileno(), asked], [], [], 0.0 if later else idle)[0]
            if asked in ready:
                later.extend(KEPT_STORES.asked())
            try:
                connection, _ = listener.accept()
            except BlockingIOError:
                if later:
                    with bulk_imports():
                        later.pop(0)()
                elif not ready:
                    return 0
                continue
            connection.setblocking(True)
            gc.freeze()  # the child's collections never walk, so never copy, the launcher's heap (see bulk_imports)
            if os.fork() == 0:
                listener.close()
                _serve_request(connection)  # never returns
            connection.close()
            if not _still_ours(socket_path, bound):
                return 0
    finally:
        if _still_ours(socket_path, bound):
            os.unlink(socket_path)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pid_path)
        listener.close()


def _serve_request(connection: socket.socket) -> None:
    """In a child of the launcher: take on the requester (see ``take_on``) and serve its request; then exit."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        request, descriptors = receive_message(connection)
        if request["kind"] != "start":
            KEPT_STORES.close_in_child()
        extra = take_on(request, descriptors)
        module, _, function = HANDLERS[request["kind"]].partition(":")
        code = getattr(importlib.import_module(module), function)(connection, request, extra)
    except BaseException:  # noqa: BLE001 - a child of the launcher never returns into its loop
        traceback.print_exc()
    finally:
        os._exit(code)


def take_on(request: dict[str, Any], descriptors: list[int]) -> list[int]:
    """Become the requester: its standard streams (the first descriptors, onto ``request["stdio"]``), environment,
    working folder, umask, ``sys.argv``, ``sys.path`` and ignored signals; the descriptors left over."""
    targets: list[int] = request["stdio"]
    for target, fd in zip(targets, descriptors, strict=False):
        os.dup2(fd, target)
        os.close(fd)
    if 1 in targets:  # a terminal gets each line as it is printed, as the requester's own stdout would
        sys.stdout.reconfigure(line_buffering=os.isatty(1))  # type: ignore[union-attr]
    os.environ.clear()
    os.environ.update(request["environ"])
    time.tzset()  # local time as TZ says in the requester's environment
    for signum in SIGNALS:
        if signum in request["ignored_signals"]:
            signal.signal(signum, signal.SIG_IGN)
        else:
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    sys.argv[:] = request["argv"]
    sys.path[:] = request["path"]
    importlib.invalidate_caches()
    return descriptors[len(targets):]


def serve_start(connection: socket.socket, request: dict[str, Any], worker: list[int]) -> int:
    """Record the execution as the starter would, reply with its id and end notice, and become its orchestrator.

    An error before the execution is recorded goes to the starter, which raises it as its own.
    """
    from forgeline.engine.end_notice import open_end_notice
    from forgeline.engine.launch import become_orchestrator, record_start
    from forgeline.engine.runtime import Runtime
    from forgeline.jobs.function_fork import ForkedWorker, offer
    from forgeline.workflow.pipeline import Pipeline

    if len(worker) == 3:  # the starter's @step worker: this process is not its parent (child 0: none to reap)
        offer(ForkedWorker(request_fd=worker[0], reply_fd=worker[1], status_fd=worker[2], child=0))
    try:
        pipeline = Pipeline.from_definition(request["definition"])
        settings = request["settings"]
        kept = KEPT_STORES.take(settings)
        runtime = None if kept is None else Runtime.build(settings, store=kept)
        recorded = record_start(pipeline, request["parameters"], settings, request["selective"],
                                keep_jobs=request["keep_jobs"], runtime=runtime)
    except BaseException as exc:  # noqa: BLE001 - the starter raises it as its own
        send_message(connection, {"error": _portable(exc)})
        return 0
    notice, notice_fd = open_end_notice()
    try:
        send_message(connection, {"execution_id": recorded.execution_id},
                     [fd for fd in (notice.descriptor(),) if fd is not None])
    except OSError:  # the starter is gone: its execution runs all the same, as a forked one would
        pass
    finally:
        notice.close()
        connection.close()
    os.setsid()  # out of the launcher's session: the orchestrator outlives it
    return become_orchestrator(recorded.execution_id, recorded.runtime.settings, recorded.work_dir,
                               recorded.options, recorded.runtime, notice_fd)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` when it survives pickling, else a ForgelineError with its type and message."""
    import pickle

    from forgeline.errors import ForgelineError

    exc.__traceback__ = None
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any exception type may refuse to pickle
        return ForgelineError(f"{type(exc).__name__}: {exc}")
    return exc


def _stop(_signum: int, _frame: object) -> None:
    raise SystemExit(0)  # through serve's cleanup: the socket and pid file go


def _still_ours(socket_path: str, inode: int) -> bool:
    try:
        return os.stat(socket_path).st_ino == inode
    except OSError:
        return False


def _tell(ready_fd: int, news: bytes) -> None:
    with contextlib.suppress(OSError):
        os.write(ready_fd, news)
    with contextlib.suppress(OSError):
        os.close(ready_fd)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m forgeline.engine.warm_launcher <socket> <ready-fd> <idle-seconds>``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m forgeline.engine.warm_launcher <socket> <ready-fd> <idle-seconds>", file=sys.stderr)
        return 2
    return serve(args[0], int(args[1]), float(args[2]))


if __name__ == "__main__":  # run through the module's own name, so the handlers it names are this code
    from forgeline.engine.warm_launcher import main as launcher_main

    sys.exit(launcher_main())
