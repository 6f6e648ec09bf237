"""The worker side of batch transform: load the model once, transform one chunk of records per call."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence

from forgeline.jobs.transform_chunks import (
    Chunk,
    ChunkResult,
    Failure,
    Predictor,
    TransformSettings,
)

_predictor: Predictor | None = None
_load_error: str | None = None


def _init_worker(factory: Callable[[], Predictor]) -> None:
    """Load the model once per worker; a failure is kept and reported by the first chunk, not by a broken pool."""
    global _predictor, _load_error
    atexit.register(_exit_at_once)  # first, so that it runs last: after what the model's code registers
    try:
        _predictor = factory()
    except Exception as exc:  # noqa: BLE001 - reported as the job's failure with its type and message
        _load_error = f"{type(exc).__name__}: {exc}"


def _exit_at_once() -> None:
    """End a worker without tearing its interpreter down: nothing is left to clean up once its work is done.

    Finalising an interpreter that imported scikit-learn (or torch) takes 0.1–0.3 s, and the pool's shutdown, so
    the whole transform, waits for it. Output the model's code printed is flushed first.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(0)


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
