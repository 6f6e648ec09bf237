"""Batch transform: cut input files into chunks of whole records, predict on worker processes, assemble in order.

The model is reached only through a predictor (``predict(body, content_type, accept)``) built by a factory that
each worker calls once; the factory is the inference contract's loader, so batch transform, the registry and
real-time serving share one code path from request to prediction.

The parent process never touches the records: it only finds line ends near chunk boundaries (``mmap.rfind``)
and writes the workers' answers in input order. Each worker reads its own byte range, sends it to the model as
one request (a MultiRecord batch is exactly the chunk's bytes) and returns the assembled output lines, so the
per-record work is all in the workers and the job scales with their number.
"""

from __future__ import annotations

import json
import mmap
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

MB = 1024 * 1024
IN_FLIGHT_PER_WORKER = 3
"""Chunks queued per worker: enough that none waits for the next one, few enough to bound memory."""
CHUNKS_PER_WORKER = 16
"""Chunks are sized for this many per worker (max_payload_mb permitting), so the last ones idle no worker long."""
MIN_CHUNK_BYTES = 256 * 1024
"""Chunks are not made smaller than this to spread work: below it the per-request cost starts to show."""
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                    "NUMEXPR_NUM_THREADS")


class Predictor(Protocol):
    """Anything that turns a request body into a response body."""

    def predict(self, body: bytes, content_type: str, accept: str | None = None) -> Any:
        """The response for one request."""
        ...


@dataclass(frozen=True)
class TransformSettings:
    """How records are split, batched, joined and assembled (SageMaker's transform options)."""

    content_type: str = "text/csv"
    split_type: str = "Line"  # Line | None
    strategy: str = "MultiRecord"  # MultiRecord | SingleRecord
    max_payload_mb: float = 6.0
    accept: str | None = None
    assemble_with: str = "Line"  # Line | None
    join_source: str = "None"  # Input | None
    workers: int = 1

    def __post_init__(self) -> None:
        choices = {"split_type": ("Line", "None"), "strategy": ("MultiRecord", "SingleRecord"),
                   "assemble_with": ("Line", "None"), "join_source": ("Input", "None")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.max_payload_mb <= 0 or self.workers < 1:
            raise ValueError("max_payload_mb must be positive and workers at least 1")
        if self.join_source == "Input" and self.assemble_with != "Line":
            raise ValueError("join_source='Input' needs assemble_with='Line' (one output line per input record)")


class TransformError(Exception):
    """Why a batch transform stopped before its end."""


class RecordError(TransformError):
    """A record the model rejected, located by file and line."""


class ModelLoadError(TransformError):
    """The workers could not load the model."""


@dataclass(frozen=True)
class Chunk:
    """A byte range of one input file that holds whole records: what one worker call transforms."""

    path: str
    start: int
    length: int


@dataclass(frozen=True)
class Failure:
    """Why a chunk has no output: records ``first``..``last`` (0-based, within the chunk) and the error."""

    first: int | None  # None: not about a record (the model could not load)
    last: int | None
    message: str


@dataclass(frozen=True)
class ChunkResult:
    """A chunk's assembled output and how many records it held (to number the lines of the next chunk)."""

    output: bytes
    records: int
    failure: Failure | None = None


@dataclass(frozen=True)
class InputFile:
    """One input file, its path relative to the input, and where its output goes."""

    path: Path
    relative: Path
    output: Path


def input_files(source: Path, target: Path) -> list[InputFile]:
    """Every file under ``source`` (or ``source`` itself), in path order, with ``<target>/<relative>.out``."""
    if not source.exists():
        raise FileNotFoundError(f"the transform input {source} does not exist")
    if not source.is_dir():
        return [InputFile(source, Path(source.name), target / f"{source.name}.out")]
    files = sorted(p for p in source.rglob("*") if p.is_file())
    return [InputFile(p, p.relative_to(source), target / f"{p.relative_to(source)}.out") for p in files]


def chunk_size(settings: TransformSettings, total_bytes: int) -> int:
    """Bytes per chunk: at most max_payload_mb, smaller when that spreads the input better over the workers."""
    limit = max(1, int(settings.max_payload_mb * MB))
    spread = max(MIN_CHUNK_BYTES, total_bytes // (settings.workers * CHUNKS_PER_WORKER))
    return min(limit, spread)


def plan_chunks(path: Path, split_type: str, size: int) -> Iterator[Chunk]:
    """Cut a file at line ends into chunks of at most ``size`` bytes (a longer record makes a chunk of its own)."""
    total = path.stat().st_size
    if total == 0:
        return
    if split_type == "None" or total <= size:
        yield Chunk(str(path), 0, total)
        return
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        start = 0
        while start < total:
            end = start + size
            if end >= total:
                cut = total - 1
            else:
                cut = view.rfind(b"\n", start, end)  # scans back from `end`: touches a page or two
                if cut < 0:
                    cut = view.find(b"\n", end)
                    cut = total - 1 if cut < 0 else cut
            yield Chunk(str(path), start, cut + 1 - start)
            start = cut + 1


# -- in a worker ----------------------------------------------------------------------------------------------------

_predictor: Predictor | None = None
_load_error: str | None = None


def _init_worker(factory: Callable[[], Predictor]) -> None:
    """Load the model once per worker; a failure is kept and reported by the first chunk, not by a broken pool."""
    global _predictor, _load_error
    try:
        _predictor = factory()
    except Exception as exc:  # noqa: BLE001 - reported as the job's failure with its type and message
        _load_error = f"{type(exc).__name__}: {exc}"


def read_chunk(chunk: Chunk) -> bytes:
    """The bytes of a chunk, read by the worker itself so records never pass through the parent."""
    descriptor = os.open(chunk.path, os.O_RDONLY)
    try:
        data = os.pread(descriptor, chunk.length, chunk.start)
    finally:
        os.close(descriptor)
    if len(data) != chunk.length:
        raise OSError(f"{chunk.path} changed while it was being transformed")
    return data


def transform_chunk(chunk: Chunk, settings: TransformSettings) -> ChunkResult:
    """Predict one chunk in a worker: its assembled output, or the first record the model rejected."""
    if _predictor is None:
        return ChunkResult(b"", 0, Failure(None, None, f"the model could not be loaded: {_load_error}"))
    data = read_chunk(chunk)
    if settings.split_type == "None":
        return _transform_document(_predictor, data, settings)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    if not data.endswith(b"\n"):
        data += b"\n"
    if settings.strategy == "SingleRecord":
        return _transform_records(_predictor, data[:-1].split(b"\n"), settings)
    records = data.count(b"\n")
    try:
        output = respond(_predictor, data, settings)
    except Exception as exc:  # noqa: BLE001 - the model rejected something: find which record
        return ChunkResult(b"", records, locate_failure(_predictor, data[:-1].split(b"\n"), settings, exc))
    lines, answered = line_block(output)
    if answered != records:
        return ChunkResult(b"", records, count_failure(records, answered))
    if settings.assemble_with == "None":
        return ChunkResult(output, records)
    if settings.join_source == "Input":
        return ChunkResult(join_lines(data[:-1].split(b"\n"), lines[:-1].split(b"\n"), settings.content_type),
                           records)
    return ChunkResult(lines, records)


def line_block(output: bytes) -> tuple[bytes, int]:
    """A response as lines that each end with a newline (blank lines at its end dropped), and their number.

    A response that already ends with exactly one newline is returned as is: no copy of a large output.
    """
    end = len(output)
    while end and output[end - 1] == 0x0A:  # usually one step: the final newline
        end -= 1
    if end == 0:
        return b"", 0
    block = output if end == len(output) - 1 else output[:end] + b"\n"
    return block, block.count(b"\n")


def _transform_records(predictor: Predictor, records: list[bytes], settings: TransformSettings) -> ChunkResult:
    """SingleRecord: one request per record."""
    outputs = []
    for index, record in enumerate(records):
        try:
            output = respond(predictor, record + b"\n", settings)
        except Exception as exc:  # noqa: BLE001 - reported with its line
            return ChunkResult(b"", len(records), Failure(index, index, describe(exc)))
        if settings.assemble_with == "Line":
            output, answered = line_block(output)
            if answered != 1:
                return ChunkResult(b"", len(records), Failure(index, index, count_failure(1, answered).message))
        outputs.append(output)
    if settings.join_source == "Input":
        return ChunkResult(join_lines(records, [o[:-1] for o in outputs], settings.content_type), len(records))
    return ChunkResult(b"".join(outputs), len(records))


def _transform_document(predictor: Predictor, data: bytes, settings: TransformSettings) -> ChunkResult:
    """split_type='None': the whole file is one record, and the response is its output as the model wrote it."""
    try:
        output = respond(predictor, data, settings)
    except Exception as exc:  # noqa: BLE001 - reported with the file
        return ChunkResult(b"", 1, Failure(0, 0, describe(exc)))
    if settings.assemble_with == "None":
        return ChunkResult(output, 1)
    output = output.rstrip(b"\n")
    if settings.join_source == "Input":
        output = join(data.rstrip(b"\r\n"), output, settings.content_type)
    return ChunkResult(output + b"\n" if output else b"", 1)


def respond(predictor: Predictor, body: bytes, settings: TransformSettings) -> bytes:
    """The model's response to one request, as bytes."""
    response = predictor.predict(body, settings.content_type, settings.accept)
    if isinstance(response, bytes):
        return response
    if isinstance(response, (bytearray, memoryview)):
        return bytes(response)
    return (response if isinstance(response, str) else str(response)).encode()


def locate_failure(predictor: Predictor, records: list[bytes], settings: TransformSettings,
                   error: Exception) -> Failure:
    """The first record that fails on its own, by bisection (a few requests, not one per record)."""
    low, high = 0, len(records)
    while high - low > 1:
        middle = (low + high) // 2
        failed = _fails(predictor, records[low:middle], settings)
        if failed is None:
            failed = _fails(predictor, records[middle:high], settings)
            if failed is None:  # the halves pass alone: the batch fails only as a whole
                return Failure(low, high - 1, describe(error))
            low = middle
        else:
            high = middle
        error = failed
    return Failure(low, low, describe(error))


def _fails(predictor: Predictor, records: list[bytes], settings: TransformSettings) -> Exception | None:
    try:
        respond(predictor, b"\n".join(records) + b"\n", settings)
    except Exception as exc:  # noqa: BLE001 - the answer we are looking for
        return exc
    return None


def describe(error: BaseException) -> str:
    """``Type: message`` of an exception."""
    return f"{type(error).__name__}: {error}"


def count_failure(records: int, answered: int) -> Failure:
    """The model's output has a different number of lines than the request had records."""
    return Failure(0, records - 1, f"the model returned {answered} line(s) for {records} record(s); "
                                   "output_fn must return one line per input record")


def join_lines(records: Sequence[bytes], predictions: Sequence[bytes], content_type: str) -> bytes:
    """Each input record with its prediction next to it, one line each."""
    if "json" in content_type:
        joined = [join(record, prediction, content_type) for record, prediction in zip(records, predictions,
                                                                                         strict=True)]
    else:
        joined = [record + b"," + prediction for record, prediction in zip(records, predictions, strict=True)]
    return b"\n".join(joined) + b"\n"


def join(record: bytes, prediction: bytes, content_type: str) -> bytes:
    """An input record with its prediction next to it (CSV: appended column; JSON: a 'prediction' field)."""
    if "json" in content_type:
        try:
            source = json.loads(record)
            value = json.loads(prediction)
        except ValueError:
            return record + b"," + prediction
        if isinstance(source, dict):
            return json.dumps({**source, "prediction": value}).encode()
        return json.dumps([source, value]).encode()
    return record + b"," + prediction


# -- in the parent --------------------------------------------------------------------------------------------------


def transform_folder(source: Path, target: Path, factory: Callable[[], Predictor],
                     settings: TransformSettings) -> dict[str, int]:
    """Transform every file under ``source`` into ``<target>/<same relative path>.out``; returns records per file.

    Raises RecordError naming the file and line of the first record the model rejects, ModelLoadError when the
    workers cannot load the model.
    """
    files = input_files(source, target)
    size = chunk_size(settings, sum(f.path.stat().st_size for f in files))
    counts = {str(f.relative): 0 for f in files}
    for file in files:
        file.output.parent.mkdir(parents=True, exist_ok=True)
        file.output.write_bytes(b"")  # an empty input still gets its (empty) output
    context = multiprocessing.get_context("spawn")
    with worker_thread_limits(settings.workers), \
            ProcessPoolExecutor(settings.workers, mp_context=context, initializer=_init_worker,
                                initargs=(factory,)) as pool:
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
