"""WarmWorkerPool: function workers kept warm between calls, so a @step costs milliseconds, not a new interpreter."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from forgeline.jobs.function import FunctionWorker


class WarmWorkerPool:
    """Up to `size` warm workers: spawned on first need, reused when idle, replaced once they die or are stopped.

    A worker the process that started this pipeline forked for it (see ``jobs/function_fork.py``) is adopted
    as the first idle worker, when this pool runs that process's interpreter.
    """

    def __init__(self, size: int, *, python: str = sys.executable) -> None:
        if size < 1:
            raise ValueError(f"a worker pool needs at least one worker, got size={size}")
        self._python = python
        self._slots = threading.BoundedSemaphore(size)
        self._lock = threading.Lock()
        adopted = FunctionWorker.adopt_offered()
        if adopted is not None and python != sys.executable:  # it runs another interpreter than asked for
            adopted.dispose()
            adopted = None
        self._idle: list[FunctionWorker] = [] if adopted is None else [adopted]
        self._leased: set[FunctionWorker] = set()
        self._closed = False

    @contextmanager
    def lease(self) -> Iterator[FunctionWorker]:
        """Borrow a worker for one call, waiting for a free slot; it goes back to the pool if still reusable."""
        with self._slots:
            worker = self._take_idle() or FunctionWorker.spawn(self._python)
            with self._lock:
                self._leased.add(worker)
            try:
                yield worker
            finally:
                self._give_back(worker)

    def prestart(self) -> None:
        """Start one worker now if the pool has none, so its interpreter starts while the first call is prepared."""
        with self._lock:
            if self._closed or self._idle or self._leased:
                return
            self._idle.append(FunctionWorker.spawn(self._python))

    def shutdown(self) -> None:
        """End every worker, idle or busy; the pool cannot be used afterwards."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._leased)
        for worker in idle:
            worker.dispose()
        for worker in busy:
            worker.kill()  # its holder disposes of it when the call returns

    def _take_idle(self) -> FunctionWorker | None:
        with self._lock:
            if self._closed:
                raise RuntimeError("the worker pool was shut down")
            while self._idle:
                worker = self._idle.pop()
                if worker.reusable:
                    return worker
                worker.dispose()  # died while idle: reap it, a fresh one replaces it
        return None

    def _give_back(self, worker: FunctionWorker) -> None:
        with self._lock:
            self._leased.discard(worker)
            keep = worker.reusable and not self._closed
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.dispose()
