"""Two registered versions scored on the same labelled data: the second is the candidate, the first its baseline."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from forgeline.errors import ReportError
from forgeline.inference.loader import model_source
from forgeline.reports.baseline import score_baseline
from forgeline.reports.evaluation import ReportRequest, WrittenReport, write_report
from forgeline.reports.inputs import read_rows
from forgeline.reports.render import HTML_NAME, PDF_NAME
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.records import ModelPackageRecord

REPORT_FORMATS = {".pdf": PDF_NAME, ".html": HTML_NAME, ".htm": HTML_NAME}


@dataclass(frozen=True)
class DataComparison:
    """How to score both versions: the data, its label, the task and the report's options."""

    data: str
    label: str
    task: str = "binary"
    content_type: str | None = None  # default: each package's first content type, else text/csv
    score_field: str = "score"
    threshold: float = 0.5
    segment: str | None = None


def report_name(path: Path) -> str:
    """Which file of a report ``path`` asks for, by its suffix; ReportError for another suffix."""
    name = REPORT_FORMATS.get(path.suffix.lower())
    if name is None:
        raise ReportError(f"--report {path}: name a .pdf or .html file")
    return name


def compare_on_data(first: ModelPackageRecord, second: ModelPackageRecord, options: DataComparison,
                    cache_dir: Path, report: Path | None = None,
                    artifacts: ArtifactStore | None = None) -> WrittenReport:
    """Score both versions through forgeline.inference, compute the report, and copy it to ``report`` if given."""
    wanted = None if report is None else report_name(report)
    rows = read_rows(options.data)
    drop = [options.label] + ([options.segment] if options.segment else [])
    scores = [score_baseline(model_source(package), rows, drop,
                             options.content_type or next(iter(package.content_types), "text/csv"),
                             options.score_field, str(cache_dir), artifacts) for package in (first, second)]
    with tempfile.TemporaryDirectory(prefix="forgeline-report-") as folder:
        written = write_report(ReportRequest(
            data=options.data, label=options.label, task=options.task, candidate_scores=scores[1],
            baseline_scores=scores[0], score_field=options.score_field, threshold=options.threshold,
            segment=options.segment, title=f"{second.arn} against {first.arn}"), Path(folder))
        if report is not None and wanted is not None:
            report.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(Path(folder) / wanted, report)
    return WrittenReport(report.parent if report else Path(), written.metrics, written.pages)
