"""Batch transform records: settings, chunks of whole records and their results, shared by parent and workers."""

from __future__ import annotations

import mmap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

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
    warm_seconds: float = 0.0  # > 0: workers forked by the warm transform server, which waits this long for more

    def __post_init__(self) -> None:
        choices = {"split_type": ("Line", "None"), "strategy": ("MultiRecord", "SingleRecord"),
                   "assemble_with": ("Line", "None"), "join_source": ("Input", "None")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.max_payload_mb <= 0 or self.workers < 1 or self.warm_seconds < 0:
            raise ValueError("max_payload_mb must be positive, workers at least 1 and warm_seconds not negative")
        if self.join_source == "Input" and self.assemble_with != "Line":
            raise ValueError("join_source='Input' needs assemble_with='Line' (one output line per input record)")


class TransformError(Exception):
    """Why a batch transform stopped before its end."""


class RecordError(TransformError):
    """A record the model rejected, located by file and line."""


class ModelLoadError(TransformError):
    """The workers could not load the model."""


class WorkerLostError(TransformError):
    """A worker process died before it answered (out of memory, or killed by a signal)."""


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
