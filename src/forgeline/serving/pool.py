"""WorkerPool: the worker processes of one endpoint variant, fed with micro-batches over socket pairs.

Requests queue up in the server; whenever a worker is free it gets every queued request (up to the batch size) in
one frame, so under load the batches grow by themselves. A pipeline with a stage that accepts batches may also
wait up to ``max_batch_wait_us`` for a fuller batch. A worker that dies has its batch put back at the head of the
queue for another worker (inference is idempotent) and is replaced. Workers are added while requests wait too
long and retired after ``idle_seconds`` without work, between ``min_workers`` and ``max_workers``.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import os
import pickle
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from forgeline.errors import EndpointError
from forgeline.inference.handlers import JSON
from forgeline.jobs.transform_chunks import THREAD_VARIABLES
from forgeline.serving.ipc import HEADER, encode_frame
from forgeline.serving.stages import Reply, Request

log = logging.getLogger("forgeline.serving")

MAX_ATTEMPTS = 3  # a request whose worker died is tried on this many workers in all
SCALE_UP_WAIT_SECONDS = 0.025  # the oldest queued request waited this long: add a worker
SPAWN_BACKOFF_SECONDS = 5.0  # after a worker failed to start, before trying another
TICK_SECONDS = 0.05
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
START_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class PoolSettings:
    """How many workers, how big and how patient batches are."""

    min_workers: int = 1
    max_workers: int = 4
    max_batch_size: int = 32
    max_batch_wait_us: int = 0  # 0 unless a stage accepts batches: waiting only pays off then
    idle_seconds: float = 60.0
    timeout_seconds: float = 60.0  # a batch unanswered this long: 504 to its callers, the worker is replaced
    max_queue: int = 10_000  # requests waiting beyond this are refused with 503 (the endpoint is flooded)


@dataclass
class Pending:
    """A queued request, the future its caller awaits, and how often it was sent to a worker."""

    request: Request
    future: asyncio.Future[Reply]
    enqueued: float
    attempts: int = 0


class Worker:
    """One worker process and its end of the socket pair."""

    def __init__(self, process: subprocess.Popen[bytes], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.process = process
        self.reader = reader
        self.writer = writer
        self.ready = False
        self.batch: list[Pending] | None = None
        self.idle_since = time.monotonic()
        self.sent_at = 0.0  # when the batch in flight was sent
        self.reader_task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid


class WorkerPool:
    """The workers of one variant; ``submit`` queues a request and returns the future of its reply."""

    def __init__(self, label: str, spec: dict[str, Any], settings: PoolSettings, log_path: Path,
                 logger: logging.Logger | None = None) -> None:
        self.label = label  # endpoint/variant, for logs
        self.log = logger or log
        self.spec = spec
        self.settings = settings
        self.log_path = log_path
        self.queue: deque[Pending] = deque()
        self.workers: list[Worker] = []
        self.closing = False
        # batches sent: count per size bucket (the last one: larger than every bound), and their total size
        self.batch_buckets = [0] * (len(BATCH_BUCKETS) + 1)
        self.batch_total = 0
        self._ids = itertools.count(1)
        self._timer: asyncio.TimerHandle | None = None
        self._flush = False  # the batch wait is over: send what is queued
        self._scale_up_at: float | None = None  # when waiting requests asked for one more worker
        self._ticker: asyncio.Task[None] | None = None
        self._spawning = 0
        self._spawn_blocked_until = 0.0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reaping: set[asyncio.Task[Any]] = set()  # stopped workers not yet exited (killed after 5 s)

    @property
    def in_flight(self) -> int:
        """Requests sent to workers and not answered yet."""
        return sum(len(w.batch) for w in self.workers if w.batch)

    async def start(self) -> None:
        """Start ``min_workers`` workers and wait until they are ready; EndpointError when the models cannot load."""
        results = await asyncio.gather(*(self._spawn() for _ in range(max(1, self.settings.min_workers))),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures and not any(w.ready for w in self.workers):
            await self.close()
            first = failures[0]
            raise first if isinstance(first, EndpointError) else EndpointError(f"{self.label}: {first}")
        self._ticker = asyncio.get_running_loop().create_task(self._tick())

    def submit(self, request: Request) -> asyncio.Future[Reply]:
        """Queue a request; its future resolves to the reply."""
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        if self.closing:
            future.set_result((503, JSON, b"", None, "the endpoint variant was stopped; retry"))
            return future
        if len(self.queue) >= self.settings.max_queue:
            future.set_result((503, JSON, b"", None, f"{len(self.queue)} requests are waiting for this variant's "
                                                      "workers already; retry later"))
            return future
        self.queue.append(Pending(request, future, time.monotonic()))
        self._dispatch()
        return future

    async def drain_and_close(self, timeout: float = 60.0) -> None:
        """Answer what is queued and in flight, then stop the workers (the variant no longer gets requests)."""
        deadline = time.monotonic() + timeout
        while (self.queue or self.in_flight) and time.monotonic() < deadline and any(w.ready for w in self.workers):
            await asyncio.sleep(0.01)
        await self.close()

    async def close(self) -> None:
        """Stop every worker and wait for them to exit; what is still queued gets a 503."""
        self.closing = True
        if self._ticker is not None:
            self._ticker.cancel()
        for worker in list(self.workers):
            self.workers.remove(worker)
            self._stop(worker)
        self._fail_queue("the endpoint variant was stopped; retry")
        await asyncio.gather(*list(self._reaping), return_exceptions=True)

    async def _spawn(self) -> None:
        self._spawning += 1
        try:
            worker = await self._start_worker()
        except BaseException:
            self._spawn_blocked_until = time.monotonic() + SPAWN_BACKOFF_SECONDS
            raise
        finally:
            self._spawning -= 1
        if self.closing:
            self._stop(worker)
            return
        worker.reader_task = asyncio.get_running_loop().create_task(self._read_replies(worker))
        if self._scale_up_at is not None:
            self.log.info("%s: worker %d serving (%d workers), %.0f ms after requests waiting asked for it",
                          self.label, worker.pid, len(self.workers), (time.monotonic() - self._scale_up_at) * 1000)
            self._scale_up_at = None
        else:
            self.log.info("%s: worker %d serving (%d workers)", self.label, worker.pid, len(self.workers))
        self._dispatch()

    async def _start_worker(self) -> Worker:
        parent, child = socket.socketpair()
        with _open_log(self.log_path) as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "forgeline.serving.worker", str(child.fileno())],
                pass_fds=[child.fileno()], stdin=subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                # one native thread per worker unless the user says otherwise: an OpenMP pool in every worker
                # on shared cores makes a one-row predict spin (HistGradientBoosting: milliseconds to seconds)
                env={**os.environ, "PYTHONUNBUFFERED": "1",
                     **{name: os.environ.get(name, "1") for name in THREAD_VARIABLES}},
            )
        child.close()
        reader, writer = await asyncio.open_connection(sock=parent, limit=1 << 26)
        worker = Worker(process, reader, writer)
        self.workers.append(worker)
        writer.write(encode_frame(self.spec))
        try:
            message = await asyncio.wait_for(_read_frame(reader), START_TIMEOUT_SECONDS)
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            message = None
        if not (isinstance(message, tuple) and message[0] == "ready"):
            self.workers.remove(worker)
            self._stop(worker)
            why = message[1] if isinstance(message, tuple) else f"the worker exited with {process.poll()}"
            raise EndpointError(f"{self.label}: the models could not be loaded: {why} "
                                f"(see `forgeline endpoints logs {self.label.split('/')[0]}`)")
        worker.ready = True
        worker.idle_since = time.monotonic()
        return worker

    async def _read_replies(self, worker: Worker) -> None:
        try:
            while True:
                message = await _read_frame(worker.reader)
                batch, worker.batch = worker.batch, None
                worker.idle_since = time.monotonic()
                for pending, reply in zip(batch or [], message[1], strict=False):
                    if not pending.future.done():
                        pending.future.set_result(reply)
                self._dispatch()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            return
        self._on_death(worker)

    def _on_death(self, worker: Worker) -> None:
        if worker not in self.workers:
            return
        self.workers.remove(worker)
        self._stop(worker)
        if self.closing:
            return
        batch = worker.batch or []
        self.log.warning("%s: worker %d died (exit %s) holding %d requests; retrying them on another worker",
                    self.label, worker.pid, worker.process.poll(), len(batch))
        for pending in reversed(batch):
            pending.attempts += 1
            if pending.future.done():
                continue
            if pending.attempts >= MAX_ATTEMPTS:
                pending.future.set_result((500, JSON, b"", None,
                                           f"the worker died {pending.attempts} times while answering"))
            else:
                self.queue.appendleft(pending)
        if len(self.workers) + self._spawning < max(1, self.settings.min_workers) or self.queue:
            self._spawn_in_background()
        self._dispatch()

    def _spawn_in_background(self) -> None:
        if self.closing or time.monotonic() < self._spawn_blocked_until:
            return
        task = asyncio.get_running_loop().create_task(self._spawn())
        self._tasks.add(task)
        task.add_done_callback(self._spawned)

    def _spawned(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("%s: %s", self.label, task.exception())
            if not any(w.ready for w in self.workers):  # nobody can answer what waits: fail it now
                self._fail_queue(f"no worker could be started: {task.exception()}")

    def _fail_queue(self, message: str) -> None:
        while self.queue:
            pending = self.queue.popleft()
            if not pending.future.done():
                pending.future.set_result((503, JSON, b"", None, message))

    def _dispatch(self) -> None:
        settings = self.settings
        while self.queue:
            worker = next((w for w in self.workers if w.ready and w.batch is None), None)
            if worker is None:
                return
            if settings.max_batch_wait_us and len(self.queue) < settings.max_batch_size and not self._flush:
                wait = settings.max_batch_wait_us / 1e6 - (time.monotonic() - self.queue[0].enqueued)
                if wait > 0:
                    # The timer flushes whatever is queued when it fires: event loops with millisecond timers
                    # (uvloop) fire early, and waiting again would spin.
                    if self._timer is None:
                        self._timer = asyncio.get_running_loop().call_later(wait, self._on_timer)
                    return
            self._flush = False
            batch: list[Pending] = []
            while self.queue and len(batch) < settings.max_batch_size:
                pending = self.queue.popleft()
                if not pending.future.done():  # a caller that went away needs no answer
                    batch.append(pending)
            if not batch:
                continue
            worker.batch = batch
            worker.sent_at = time.monotonic()
            self.batch_buckets[bisect.bisect_left(BATCH_BUCKETS, len(batch))] += 1
            self.batch_total += len(batch)
            try:
                worker.writer.write(encode_frame((next(self._ids), [p.request for p in batch])))
            except (ConnectionError, OSError, RuntimeError):
                self._on_death(worker)

    def _on_timer(self) -> None:
        self._timer = None
        self._flush = True
        self._dispatch()

    async def _tick(self) -> None:
        while not self.closing:
            await asyncio.sleep(TICK_SECONDS)
            self._scale()

    def _scale(self) -> None:
        now, settings = time.monotonic(), self.settings
        for worker in [w for w in self.workers if w.batch and now - w.sent_at > settings.timeout_seconds]:
            self._time_out(worker)
        count = len(self.workers) + self._spawning
        if (self.queue and self._spawning == 0 and count < settings.max_workers
                and now - self.queue[0].enqueued > SCALE_UP_WAIT_SECONDS):
            self.log.info("%s: %d requests waiting (oldest %.0f ms): adding a worker", self.label, len(self.queue),
                     (now - self.queue[0].enqueued) * 1000)
            self._scale_up_at = now
            self._spawn_in_background()
            return
        ready = [w for w in self.workers if w.ready]
        if len(ready) > max(1, settings.min_workers):
            idle = [w for w in ready if w.batch is None and now - w.idle_since > settings.idle_seconds]
            if idle:
                worker = idle[0]
                self.workers.remove(worker)
                self._stop(worker)
                self.log.info("%s: worker %d idle for %.0f s: retired (%d workers)", self.label, worker.pid,
                         now - worker.idle_since, len(self.workers))

    def _time_out(self, worker: Worker) -> None:
        batch, worker.batch = worker.batch or [], None
        self.log.error("%s: worker %d gave no answer to %d requests in %.0f s: replacing it", self.label,
                       worker.pid, len(batch), self.settings.timeout_seconds)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_result((504, JSON, b"", None, f"the model gave no answer within "
                                                                 f"{self.settings.timeout_seconds:.0f} s"))
        self.workers.remove(worker)
        _kill(worker.process)
        self._stop(worker)
        if len(self.workers) + self._spawning < max(1, self.settings.min_workers) or self.queue:
            self._spawn_in_background()

    def _stop(self, worker: Worker) -> None:
        if worker.reader_task is not None and worker.reader_task is not asyncio.current_task():
            worker.reader_task.cancel()
        try:
            worker.writer.close()  # the worker sees the end of its input and exits
        except RuntimeError:
            pass
        process = worker.process
        if process.poll() is None:
            loop = asyncio.get_running_loop()
            handle = loop.call_later(5.0, _kill, process)
            task = loop.create_task(asyncio.to_thread(process.wait))
            self._reaping.add(task)

            def reaped(done: asyncio.Task[Any]) -> None:
                handle.cancel()
                self._reaping.discard(done)

            task.add_done_callback(reaped)


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    header = await reader.readexactly(HEADER.size)
    return pickle.loads(await reader.readexactly(HEADER.unpack(header)[0]))


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()


def _open_log(path: Path) -> IO[bytes]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab", buffering=0)
