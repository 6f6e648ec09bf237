"""Writing a report: HTML with embedded PNG figures, and a PDF (matplotlib's PdfPages) of the same content."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.backends.backend_pdf import PdfPages  # noqa: E402

from forgeline.reports.figures import ReportFigure  # noqa: E402

HTML_NAME, PDF_NAME, METRICS_NAME = "report.html", "report.pdf", "metrics.json"


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def summary_rows(metrics: dict[str, Any]) -> list[list[str]]:
    """The summary table: metric, candidate, baseline, difference and its interval."""
    rows = []
    baseline, difference = metrics["baseline"] or {}, metrics["difference"] or {}
    for name, value in metrics["candidate"].items():
        change = difference.get(name)
        interval = "-" if not change or change["low"] is None else f"[{change['low']:+.4f}, {change['high']:+.4f}]"
        rows.append([name, _format(value), _format(baseline.get(name)),
                     "-" if not change or change["value"] is None else f"{change['value']:+.4f}", interval])
    return rows


SUMMARY_HEADER = ["metric", "candidate", "baseline", "difference", "95 % interval"]


def facts(metrics: dict[str, Any], title: str) -> list[str]:
    """The lines above the table: title, task, data size, label distribution, threshold."""
    labels = ", ".join(f"{k}: {_format(v)}" for k, v in metrics["label_distribution"].items())
    lines = [title, f"task: {metrics['task']}   rows: {metrics['rows']:,}   labels: {labels}"]
    if metrics["task"] == "binary":
        lines.append(f"accuracy, F1, precision and recall at threshold {metrics['threshold']:g}")
    if metrics["baseline"] is None:
        lines.append("no baseline: the candidate alone")
    return lines


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_html(path: Path, title: str, metrics: dict[str, Any], figures: list[ReportFigure]) -> None:
    """One self-contained HTML file: summary, segments table, figures as embedded PNG."""
    head, *rest = facts(metrics, title)
    table = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
                    for row in summary_rows(metrics))
    header = "".join(f"<th>{html.escape(cell)}</th>" for cell in SUMMARY_HEADER)
    segments = ""
    if metrics["segments"]:
        seg_rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{entry['rows']}</td><td>{_format(entry.get('candidate'))}</td>"
            f"<td>{_format(entry.get('baseline'))}</td></tr>" for name, entry in metrics["segments"].items())
        metric = html.escape(next(iter(metrics["segments"].values()))["metric"])
        segments = (f"<h2>By segment ({metric})</h2><table><tr><th>segment</th><th>rows</th><th>candidate</th>"
                    f"<th>baseline</th></tr>{seg_rows}</table>")
    images = "".join(f'<h2>{html.escape(f.title)}</h2><img alt="{html.escape(f.title)}" '
                     f'src="data:image/png;base64,{_png(f.figure)}">' for f in figures)
    paragraphs = "".join(f"<p>{html.escape(line)}</p>" for line in rest)
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(head)}</title><style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
        "img{max-width:100%}</style></head><body>"
        f"<h1>{html.escape(head)}</h1>{paragraphs}<h2>Summary</h2><table><tr>{header}</tr>{table}</table>"
        f"{segments}{images}</body></html>", encoding="utf-8")


def _summary_page(title: str, metrics: dict[str, Any]) -> Any:
    figure = plt.figure(figsize=(8.27, 11.69))  # A4 portrait
    lines = facts(metrics, title)
    figure.text(0.08, 0.95, lines[0], fontsize=16, weight="bold", va="top")
    for number, line in enumerate(lines[1:], 1):
        figure.text(0.08, 0.95 - 0.03 * number, line, fontsize=9, va="top")
    rows = summary_rows(metrics)
    top = 0.95 - 0.03 * len(lines) - 0.02
    axes = figure.add_axes((0.08, max(0.05, top - 0.03 * (len(rows) + 1)), 0.84, 0.03 * (len(rows) + 1)))
    axes.axis("off")
    table = axes.table(cellText=rows, colLabels=SUMMARY_HEADER, loc="upper center", cellLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.3)
    return figure


def write_pdf(path: Path, title: str, metrics: dict[str, Any], figures: list[ReportFigure]) -> int:
    """The summary page, then one page per figure; returns the number of pages."""
    with PdfPages(path, metadata={"Title": title, "Creator": "forgeline"}) as pdf:
        summary = _summary_page(title, metrics)
        pdf.savefig(summary)
        plt.close(summary)
        for item in figures:
            pdf.savefig(item.figure, bbox_inches="tight")
        return 1 + len(figures)
