"""The batch transform job: ``python batch_transform.py --input D --output O --model M [--code C --entry-point E]``."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import sys
import time
from pathlib import Path

from forgeline.errors import ForgelineError
from forgeline.inference.loader import ModelSource, load_model, materialize_model
from forgeline.jobs.transform import transform_folder
from forgeline.jobs.transform_chunks import ModelLoadError, RecordError, TransformSettings, WorkerLostError
from forgeline.store.artifacts import ArtifactStore

UNPACKED_MODEL = "model-unpacked"
"""Folder of the job directory where a model archive is unpacked once, before the workers start."""
WARM_SECONDS_VARIABLE = "FORGELINE_TRANSFORM_WARM_SECONDS"
DEFAULT_WARM_SECONDS = 300.0
"""How long the warm transform server waits for the next job before it exits (0: workers spawned by each job)."""


def warm_seconds() -> float:
    """FORGELINE_TRANSFORM_WARM_SECONDS, else the default; a value that is not a number ≥ 0 is refused in one line."""
    value = os.environ.get(WARM_SECONDS_VARIABLE, "").strip()
    if not value:
        return DEFAULT_WARM_SECONDS
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ForgelineError(f"{WARM_SECONDS_VARIABLE}={value!r} is not a number of seconds ≥ 0; "
                             "set it to 0 to start the workers with each job")
    return seconds


def staged_model(folder: Path) -> Path:
    """The staged model: an archive alone in its folder (model.tar.gz), else the folder itself."""
    entries = list(folder.iterdir()) if folder.is_dir() else []
    if len(entries) == 1 and entries[0].is_file() and entries[0].name.endswith((".tar.gz", ".tgz", ".tar")):
        return entries[0].resolve()
    return folder.resolve()


def unpacked_model(folder: Path) -> Path:
    """The model as a folder, an archive unpacked here once so that the workers do not each unpack it."""
    cache = Path(UNPACKED_MODEL).resolve()
    return materialize_model(str(staged_model(folder)), cache, ArtifactStore(str(cache)))


def main(argv: list[str] | None = None) -> int:
    """Transform every input file; exit 1 with the file and line of a record the model rejects."""
    parser = argparse.ArgumentParser(prog="batch_transform")
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--code")
    parser.add_argument("--entry-point")
    parser.add_argument("--content-type", default="text/csv")
    parser.add_argument("--split-type", default="Line")
    parser.add_argument("--strategy", default="MultiRecord")
    parser.add_argument("--max-payload-mb", type=float, default=6.0)
    parser.add_argument("--accept")
    parser.add_argument("--assemble-with", default="Line")
    parser.add_argument("--join-source", default="None")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    settings = TransformSettings(
        content_type=args.content_type, split_type=args.split_type, strategy=args.strategy,
        max_payload_mb=args.max_payload_mb, accept=args.accept or args.content_type,
        assemble_with=args.assemble_with, join_source=args.join_source,
        # one shard of a job spread over a cluster (instance_count shards) is one worker: the model loads once
        workers=1 if os.environ.get("FORGELINE_SHARD_COUNT") else args.workers,
    )
    try:
        settings = dataclasses.replace(settings, warm_seconds=warm_seconds())
    except ForgelineError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        model_dir = unpacked_model(Path(args.model))
    except ForgelineError as exc:
        print(f"the model could not be loaded: {exc}", file=sys.stderr)
        return 1
    source = ModelSource(model_data=str(model_dir), code_dir=str(Path(args.code).resolve()) if args.code else None,
                         entry_point=args.entry_point)
    started = time.perf_counter()
    try:
        counts = transform_folder(Path(args.input), Path(args.output), functools.partial(load_model, source),
                                  settings)
    except RecordError as exc:
        print(f"a record was rejected: {exc}", file=sys.stderr)
        return 1
    except ModelLoadError as exc:
        print(exc, file=sys.stderr)
        return 1
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    except WorkerLostError as exc:
        print(exc, file=sys.stderr)
        return 1
    total = sum(counts.values())
    seconds = time.perf_counter() - started
    print(f"transformed {total} record(s) in {len(counts)} file(s) with {settings.workers} worker(s) "
          f"in {seconds:.2f} s ({total / max(seconds, 1e-9):.0f} records/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
