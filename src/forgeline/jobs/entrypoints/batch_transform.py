"""The batch transform job: ``python batch_transform.py --input D --output O --model M [--code C --entry-point E]``."""

from __future__ import annotations

import argparse
import functools
import sys
import time
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from forgeline.inference.loader import ModelSource, load_model
from forgeline.jobs.transform import RecordError, TransformSettings, transform_folder


def staged_model(folder: Path) -> Path:
    """The staged model: an archive alone in its folder (model.tar.gz), else the folder itself."""
    entries = list(folder.iterdir()) if folder.is_dir() else []
    if len(entries) == 1 and entries[0].is_file() and entries[0].name.endswith((".tar.gz", ".tgz", ".tar")):
        return entries[0].resolve()
    return folder.resolve()


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
        assemble_with=args.assemble_with, join_source=args.join_source, workers=args.workers,
    )
    source = ModelSource(model_data=str(staged_model(Path(args.model))),
                         code_dir=str(Path(args.code).resolve()) if args.code else None,
                         entry_point=args.entry_point)
    started = time.perf_counter()
    try:
        counts = transform_folder(Path(args.input), Path(args.output), functools.partial(load_model, source),
                                  settings)
    except RecordError as exc:
        print(f"a record was rejected: {exc}", file=sys.stderr)
        return 1
    except BrokenProcessPool:  # a worker could not load the model: load it here to say why
        try:
            load_model(source)
        except Exception as exc:  # noqa: BLE001 - reported as the job's failure
            print(f"the model could not be loaded: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
        print("a transform worker died (out of memory, or killed)", file=sys.stderr)
        return 1
    total = sum(counts.values())
    seconds = time.perf_counter() - started
    print(f"transformed {total} record(s) in {len(counts)} file(s) with {settings.workers} worker(s) "
          f"in {seconds:.2f} s ({total / max(seconds, 1e-9):.0f} records/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
