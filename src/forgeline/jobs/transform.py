"""Batch transform, the parent side: cut input files into chunks, predict on worker processes, assemble in order.

The model is reached only through a predictor (``predict(body, content_type, accept)``) built by a factory that
each worker calls once; the factory is the inference contract's loader, so batch transform, the registry and
real-time serving share one code path from request to prediction.

The parent process never touches the records: it only finds line ends near chunk boundaries (``mmap.rfind``)
and writes the workers' answers in input order. Each worker reads its own byte range, sends it to the model as
one request (a MultiRecord batch is exactly the chunk's bytes) and returns the assembled output lines, so the
per-record work is all in the workers and the job scales with their number.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from forgeline.jobs.transform_chunks import (
    IN_FLIGHT_PER_WORKER,
    THREAD_VARIABLES,
    Chunk,
    ChunkResult,
    Failure,
    InputFile,
    ModelLoadError,
    Predictor,
    RecordError,
    TransformSettings,
    WorkerLostError,
    chunk_size,
    input_files,
    plan_chunks,
)
from forgeline.jobs.transform_warm import transform_on_server
from forgeline.jobs.transform_worker import _init_worker, transform_chunk

if TYPE_CHECKING:
    from concurrent.futures import Future

WARM_WORKERS = sys.platform.startswith("linux")
"""Where workers can be forked by the warm transform server (fork is cheap and safe enough on Linux only)."""


def transform_folder(source: Path, target: Path, factory: Callable[[], Predictor],
                     settings: TransformSettings) -> dict[str, int]:
    """Transform every file under ``source`` into ``<target>/<same relative path>.out``; returns records per file.

    With ``settings.warm_seconds`` (on Linux) the workers are forked by this user's warm transform server, which
    has imported the model's framework already; else, or if that server cannot be reached, they are spawned here.
    Raises RecordError naming the file and line of the first record the model rejects, ModelLoadError when the
    workers cannot load the model.
    """
    if settings.warm_seconds > 0 and WARM_WORKERS:
        counts = transform_on_server(source, target, factory, settings)
        if counts is not None:
            return counts
    return transform_with_pool(source, target, factory, settings, "spawn", _init_worker, (factory,))


def transform_with_pool(source: Path, target: Path, factory: Callable[[], Predictor], settings: TransformSettings,
                        start_method: str, initializer: Callable[..., None],
                        initargs: tuple[Any, ...]) -> dict[str, int]:
    """The transform on a pool of worker processes started by ``start_method``, each set up by ``initializer``.

    Raises WorkerLostError if a worker died (out of memory, or killed by a signal).
    """
    # here, not at the top: a job whose workers the warm server forks never starts a pool itself
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    files = input_files(source, target)
    size = chunk_size(settings, sum(f.path.stat().st_size for f in files))
    counts = {str(f.relative): 0 for f in files}
    for file in files:
        file.output.parent.mkdir(parents=True, exist_ok=True)
        file.output.write_bytes(b"")  # an empty input still gets its (empty) output
    context = multiprocessing.get_context(start_method)
    with worker_thread_limits(settings.workers), \
            ProcessPoolExecutor(settings.workers, mp_context=context, initializer=initializer,
                                initargs=initargs) as pool:
        writer = OrderedWriter(files, settings, counts)
        pending: deque[tuple[int, Future[ChunkResult]]] = deque()
        window = settings.workers * IN_FLIGHT_PER_WORKER
        try:
            for index, chunk in _all_chunks(files, settings.split_type, size):
                pending.append((index, pool.submit(transform_chunk, chunk, settings)))
                if len(pending) >= window:
                    writer.write(*_result(pending.popleft()))
            while pending:
                writer.write(*_result(pending.popleft()))
        except BrokenProcessPool as exc:
            raise WorkerLostError("a transform worker died (out of memory, or killed by a signal)") from exc
        except BaseException:
            for _, future in pending:
                future.cancel()
            raise
        finally:
            writer.close()
    return counts


def _all_chunks(files: list[InputFile], split_type: str, size: int) -> Iterator[tuple[int, Chunk]]:
    for index, file in enumerate(files):
        for chunk in plan_chunks(file.path, split_type, size):
            yield index, chunk


def _result(entry: tuple[int, Future[ChunkResult]]) -> tuple[int, ChunkResult]:
    return entry[0], entry[1].result()


class OrderedWriter:
    """Appends chunk outputs to their files in input order and numbers the records to locate a failure."""

    def __init__(self, files: list[InputFile], settings: TransformSettings, counts: dict[str, int]) -> None:
        self.files = files
        self.settings = settings
        self.counts = counts
        self.current: int | None = None
        self.sink: IO[bytes] | None = None

    def write(self, index: int, result: ChunkResult) -> None:
        """Append one chunk's output to its file, or raise RecordError with the rejected record's location."""
        file = self.files[index]
        key = str(file.relative)
        if result.failure is not None:
            if result.failure.first is None:
                raise ModelLoadError(result.failure.message)
            raise RecordError(self.locate(file, self.counts[key], result.failure))
        if index != self.current:
            self.close()
            self.sink = open(file.output, "ab")  # noqa: SIM115 - kept open across the file's chunks
            self.current = index
        assert self.sink is not None
        self.sink.write(result.output)
        self.counts[key] += result.records

    def locate(self, file: InputFile, before: int, failure: Failure) -> str:
        """``<file> line N: <error>`` (lines A-B for a batch that fails only as a whole)."""
        assert failure.first is not None and failure.last is not None
        if self.settings.split_type == "None":
            return f"{file.relative}: {failure.message}"
        first, last = before + failure.first + 1, before + failure.last + 1
        where = f"line {first}" if first == last else f"lines {first}-{last}"
        return f"{file.relative} {where}: {failure.message}"

    def close(self) -> None:
        """Close the file being written."""
        if self.sink is not None:
            self.sink.close()
            self.sink = None
            self.current = None


@contextmanager
def worker_thread_limits(workers: int) -> Iterator[None]:
    """Give each of several workers its share of the cores for BLAS/OpenMP threads, unless the user chose.

    ``instance_count`` workers share this machine (SageMaker gives each instance its own), and numeric libraries
    start one thread per core in every worker: N workers × all cores oversubscribes the CPU. The variables are
    set only while the workers are started, and only those the environment does not already set.
    """
    if workers <= 1:
        yield
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = str(max(1, cores // workers))
    added = [name for name in THREAD_VARIABLES if name not in os.environ]
    for name in added:
        os.environ[name] = share
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)
