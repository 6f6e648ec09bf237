"""``forgeline reports list <execution-id>``: the evaluation reports an execution produced, with their URIs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.output import JsonOption, fit, make_table, print_json, print_uris

app = typer.Typer(help="Evaluation reports (HTML and PDF) that executions produced.", no_args_is_help=True)

REPORT_KIND = "EvaluationReport"
HEADLINE = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}


@dataclass(frozen=True)
class ReportEntry:
    """One report of an execution: its step, status, URIs and headline metric."""

    step: str
    status: str
    html: str | None
    pdf: str | None
    baseline: str | None
    metrics: dict[str, Any] | None


def _entries(ctx: CliContext, execution_id: str) -> list[ReportEntry]:
    record = ctx.store.get_execution(execution_id)
    found = []
    for run in ctx.store.list_step_runs(record.id):
        if run.kind != REPORT_KIND:
            continue
        folder = run.outputs.get("report")
        found.append(ReportEntry(
            step=run.name, status=run.status.value,
            html=None if folder is None else f"{folder.rstrip('/')}/report.html",
            pdf=None if folder is None else f"{folder.rstrip('/')}/report.pdf",
            baseline=run.properties.get("baseline_package_arn"), metrics=run.properties.get("metrics")))
    return found


def _headline(metrics: dict[str, Any] | None, model: str) -> str:
    if not metrics or not metrics.get(model):
        return "-"
    name = HEADLINE.get(metrics.get("task", ""), "")
    value = metrics[model].get(name)
    return "-" if value is None else f"{name} {value:.4f}"


@app.command("list")
def list_reports(
    execution_id: Annotated[str, typer.Argument(help="The execution (as `forgeline executions list` shows).")],
    as_json: JsonOption = False,
) -> None:
    """List the evaluation reports an execution produced, with their HTML and PDF URIs."""
    ctx = CliContext()
    entries = _entries(ctx, execution_id)
    if as_json:
        print_json(entries)
        return
    if not entries:
        ctx.console.print(f"execution {execution_id} has no EvaluationReport steps")
        return
    table = make_table("step", "status", "rows", "candidate", "baseline", right=("rows",),
                       title=f"reports of execution {execution_id}")
    for entry in entries:
        rows = "-" if not entry.metrics else f"{entry.metrics['rows']:,}"
        baseline = _headline(entry.metrics, "baseline")
        table.add_row(Text(entry.step), entry.status, rows, _headline(entry.metrics, "candidate"),
                      f"{baseline} ({entry.baseline})" if entry.baseline else "no baseline")
    ctx.console.print(fit(table, ctx.console, "baseline", "step"))
    for entry in entries:
        if entry.pdf and entry.html:
            print_uris(ctx.console, [(f"{entry.step} PDF", entry.pdf), (f"{entry.step} HTML", entry.html)])
