"""Batch transform: split input files into records, batch them, predict on worker processes, assemble in order.

The model is reached only through a predictor (``predict(body, content_type, accept)``) built by a factory that
each worker calls once; the factory is the inference contract's loader, so batch transform, the registry and
real-time serving share one code path from request to prediction.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MB = 1024 * 1024
IN_FLIGHT_PER_WORKER = 3


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


class RecordError(Exception):
    """A record the model rejected, located by file and line."""


@dataclass(frozen=True)
class Batch:
    """Consecutive records of one file."""

    first_line: int  # 1-based line number of the first record
    records: list[bytes]


def read_records(path: Path, split_type: str) -> list[bytes]:
    """The records of one file: its lines (without line ends), or the whole file as one record."""
    data = path.read_bytes()
    if split_type == "None":
        return [data]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def batches(records: list[bytes], settings: TransformSettings) -> Iterator[Batch]:
    """Group records into requests no larger than max_payload_mb (one record each for SingleRecord)."""
    limit = settings.max_payload_mb * MB
    start, size = 0, 0
    for index, record in enumerate(records):
        if index > start and (settings.strategy == "SingleRecord" or size + len(record) + 1 > limit):
            yield Batch(start + 1, records[start:index])
            start, size = index, 0
        size += len(record) + 1
    if start < len(records):
        yield Batch(start + 1, records[start:])


_predictor: Predictor | None = None


def _init_worker(factory: Callable[[], Predictor]) -> None:
    global _predictor
    _predictor = factory()


def predict_batch(batch: Batch, settings: TransformSettings) -> tuple[list[bytes] | bytes, str | None]:
    """Predict one batch in a worker: the output (lines, or one blob), or the first rejected record."""
    assert _predictor is not None
    try:
        output = _call(_predictor, batch.records, settings)
    except Exception as batch_error:  # the model rejected something: find which record
        if len(batch.records) == 1:
            return b"", f"line {batch.first_line}: {type(batch_error).__name__}: {batch_error}"
        for offset, record in enumerate(batch.records):
            try:
                _call(_predictor, [record], settings)
            except Exception as exc:  # noqa: BLE001 - reported with its line
                return b"", f"line {batch.first_line + offset}: {type(exc).__name__}: {exc}"
        return b"", f"lines {batch.first_line}-{batch.first_line + len(batch.records) - 1}: {batch_error}"
    try:
        return split_output(output, batch, settings), None
    except ValueError as exc:
        return b"", f"lines {batch.first_line}-{batch.first_line + len(batch.records) - 1}: {exc}"


def _call(predictor: Predictor, records: list[bytes], settings: TransformSettings) -> bytes:
    body = b"\n".join(records) + (b"\n" if settings.split_type == "Line" else b"")
    response = predictor.predict(body, settings.content_type, settings.accept)
    return response if isinstance(response, bytes) else str(response).encode()


def split_output(output: bytes, batch: Batch, settings: TransformSettings) -> list[bytes] | bytes:
    """Output lines, one per record when lines are assembled (checked), else the raw response."""
    if settings.assemble_with == "None":
        return output
    lines = output.rstrip(b"\n").split(b"\n") if output.strip() else []
    if settings.split_type == "Line" and len(lines) != len(batch.records):
        raise ValueError(f"the model returned {len(lines)} line(s) for {len(batch.records)} record(s); "
                         "output_fn must return one line per input record")
    return lines


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


def transform_folder(source: Path, target: Path, factory: Callable[[], Predictor],
                     settings: TransformSettings) -> dict[str, int]:
    """Transform every file under ``source`` into ``<target>/<same relative path>.out``; returns records per file."""
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    counts: dict[str, int] = {}
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(settings.workers, mp_context=context, initializer=_init_worker,
                             initargs=(factory,)) as pool:
        for path in files:
            relative = path.relative_to(source) if source.is_dir() else Path(path.name)
            output = target / f"{relative}.out"
            output.parent.mkdir(parents=True, exist_ok=True)
            counts[str(relative)] = transform_file(pool, path, relative, output, settings)
    return counts


def transform_file(pool: ProcessPoolExecutor, path: Path, relative: Path, output: Path,
                   settings: TransformSettings) -> int:
    """Stream one file's batches through the pool, writing results in input order."""
    records = read_records(path, settings.split_type)
    pending: deque[tuple[Batch, Future[tuple[list[bytes] | bytes, str | None]]]] = deque()
    window = settings.workers * IN_FLIGHT_PER_WORKER
    with open(output, "wb") as sink:
        for batch in batches(records, settings):
            pending.append((batch, pool.submit(predict_batch, batch, settings)))
            if len(pending) >= window:
                write_result(sink, *pending.popleft(), relative, settings)
        while pending:
            write_result(sink, *pending.popleft(), relative, settings)
    return len(records)


def write_result(sink: Any, batch: Batch, future: Future[tuple[list[bytes] | bytes, str | None]],
                 relative: Path, settings: TransformSettings) -> None:
    """Append one batch's output to the file, or stop with the rejected record's location."""
    result, error = future.result()
    if error is not None:
        raise RecordError(f"{relative} {error}")
    if isinstance(result, bytes):
        sink.write(result)
        return
    if settings.join_source == "Input":
        result = [join(r, p, settings.content_type) for r, p in zip(batch.records, result, strict=True)]
    sink.write(b"\n".join(result) + b"\n" if result else b"")
