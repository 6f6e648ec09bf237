"""The evaluation report job: ``python job.py --predictions P --data D --label L --output O --properties F ...``.

Run by EvaluationReportStep as a processing job, so the report caches, retries and logs like any step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from forgeline.errors import ForgelineError
from forgeline.inference.loader import ModelSource
from forgeline.jobs.entrypoints.batch_transform import staged_model


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The job's command line."""
    parser = argparse.ArgumentParser(prog="evaluation_report")
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--task", default="binary")
    parser.add_argument("--score-field", default="score")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--segment")
    parser.add_argument("--id-column")
    parser.add_argument("--title", default="Evaluation report")
    parser.add_argument("--output", required=True)
    parser.add_argument("--properties", required=True)
    parser.add_argument("--baseline-model")
    parser.add_argument("--baseline-code")
    parser.add_argument("--baseline-entry-point")
    parser.add_argument("--baseline-input", default="text/csv")
    parser.add_argument("--baseline-arn")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Write the report and the step's properties; exit 1 with one line naming what is wrong."""
    args = parse_arguments(argv)
    try:
        from forgeline.reports.evaluation import ReportRequest, write_report
    except ImportError as exc:
        print(f"evaluation reports need scikit-learn and matplotlib ({exc}): pip install 'forgeline[reports]'",
              file=sys.stderr)
        return 1
    baseline = None
    if args.baseline_model:
        baseline = ModelSource(str(staged_model(Path(args.baseline_model))),
                               str(Path(args.baseline_code).resolve()) if args.baseline_code else None,
                               args.baseline_entry_point or None)
    request = ReportRequest(
        data=args.data, label=args.label, task=args.task, predictions=args.predictions, baseline=baseline,
        baseline_input=args.baseline_input, score_field=args.score_field, threshold=args.threshold,
        segment=args.segment, id_column=args.id_column, title=args.title, cache_dir=str(Path("model-cache").resolve()),
    )
    started = time.perf_counter()
    try:
        written = write_report(request, Path(args.output))
    except ForgelineError as exc:
        print(f"the report could not be made: {exc}", file=sys.stderr)
        return 1
    metrics = written.metrics
    Path(args.properties).write_text(json.dumps({"metrics": metrics}), encoding="utf-8")
    against = f"baseline {args.baseline_arn}" if args.baseline_arn else "no baseline"
    print(f"report on {metrics['rows']} row(s) against {against}: {written.pages} PDF page(s) in "
          f"{time.perf_counter() - started:.1f} s")
    for name, value in metrics["candidate"].items():
        base = (metrics["baseline"] or {}).get(name)
        print(f"  {name}: candidate {value}" + ("" if base is None else f", baseline {base}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
