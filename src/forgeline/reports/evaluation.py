"""One evaluation report: read the inputs, score the baseline, compute metrics, write HTML, PDF and metrics.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeline.errors import ReportError
from forgeline.inference.loader import ModelSource
from forgeline.reports.baseline import score_baseline
from forgeline.reports.figures import close, report_figures
from forgeline.reports.inputs import TASKS, check_ids, labelled_scores, read_ids, read_rows, read_scores
from forgeline.reports.metrics import report_metrics
from forgeline.reports.render import HTML_NAME, METRICS_NAME, PDF_NAME, write_html, write_pdf


@dataclass(frozen=True)
class ReportRequest:
    """What to compare: the candidate's predictions (or scores), the labelled data, and an optional baseline."""

    data: str
    label: str
    task: str = "binary"
    predictions: str | None = None
    candidate_scores: list[Any] | None = None  # scores already in hand (``models compare`` scores both itself)
    baseline: ModelSource | None = None
    baseline_scores: list[Any] | None = None
    baseline_input: str = "text/csv"
    score_field: str = "score"
    threshold: float = 0.5
    segment: str | None = None
    id_column: str | None = None  # a column of the data the predictions carry too (JSON field or first CSV column)
    title: str = "Evaluation report"
    cache_dir: str = ".model-cache"


@dataclass(frozen=True)
class WrittenReport:
    """Where a report was written, its metrics and its PDF's page count."""

    folder: Path
    metrics: dict[str, Any]
    pages: int

    @property
    def html(self) -> Path:
        """The HTML report."""
        return self.folder / HTML_NAME

    @property
    def pdf(self) -> Path:
        """The PDF report."""
        return self.folder / PDF_NAME


def check_request(request: ReportRequest) -> None:
    """Refuse options that cannot make a report, before reading anything."""
    if request.task not in TASKS:
        raise ReportError(f"task must be one of {', '.join(TASKS)}, got {request.task!r}")
    if not 0.0 < request.threshold < 1.0:
        raise ReportError(f"threshold must be between 0 and 1, got {request.threshold}")
    if (request.predictions is None) == (request.candidate_scores is None):
        raise ReportError("give the candidate's predictions (a file or folder) or its scores, one of them")


def write_report(request: ReportRequest, folder: Path) -> WrittenReport:
    """Make the report into ``folder`` (report.html, report.pdf, metrics.json); ReportError names a bad input."""
    check_request(request)
    rows = read_rows(request.data)
    candidate = (request.candidate_scores if request.candidate_scores is not None
                 else read_scores(str(request.predictions), request.score_field))
    if request.id_column is not None and request.predictions is not None:
        check_ids(rows, request.id_column, read_ids(request.predictions, request.id_column))
    baseline = request.baseline_scores
    if baseline is None and request.baseline is not None:
        drop = [request.label, *(c for c in (request.segment, request.id_column) if c)]
        baseline = score_baseline(request.baseline, rows, drop, request.baseline_input, request.score_field,
                                  request.cache_dir)
    data = labelled_scores(rows, request.label, request.task, candidate, baseline, request.segment)
    metrics = report_metrics(data, request.threshold)
    figures = report_figures(data, metrics)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        write_html(folder / HTML_NAME, request.title, metrics, figures)
        pages = write_pdf(folder / PDF_NAME, request.title, metrics, figures)
    finally:
        close(figures)
    (folder / METRICS_NAME).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return WrittenReport(folder, metrics, pages)
