"""``forgeline metrics``: the metric series of an execution's training steps, finished or still running."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.output import fit, make_table, print_json_lines, short_when
from forgeline.cli.step_source import announce_source
from forgeline.engine.step_records import ran_in, step_metric_points
from forgeline.store.metadata.records import MetricPoint


def metrics(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    step: Annotated[str | None, typer.Argument(help="Only this step.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", "-m", help="Only this metric.")] = None,
    last: Annotated[bool, typer.Option("--last", help="Only the latest value of each metric.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines, one metric point each.")] = False,
) -> None:
    """Print the metric values parsed from training logs, in the order they were printed.

    A cache hit's metrics are those of the execution that ran the step (a line on stderr says which).
    """
    ctx = CliContext()
    err = Console(stderr=True)
    record = ctx.store.get_execution(execution_id)
    asked = [ctx.store.get_step_run(record.id, step)] if step else ctx.store.list_step_runs(record.id)
    points: list[MetricPoint] = []
    for run in asked:
        source = ran_in(ctx.store, run)
        found = [p for p in step_metric_points(ctx.store, source.execution_id, source)
                 if metric is None or p.name == metric]
        if found:
            announce_source(err, run, source, "metrics")
        points.extend(found)
    if last:
        points = list({(p.step_name, p.name): p for p in points}.values())
    if as_json:
        print_json_lines(points)
        return
    if not points:
        where = f"step {step!r} of execution {record.id}" if step else f"execution {record.id}"
        ctx.console.print(f"no metrics recorded for {where}" + (f" named {metric!r}" if metric else ""))
        return
    table = make_table("step", "attempt", "seq", "metric", "value", "time", right=("attempt", "seq", "value"))
    for p in points:
        table.add_row(Text(p.step_name), str(p.attempt), str(p.seq), Text(p.name), f"{p.value:.6g}",
                      short_when(p.timestamp))
    ctx.console.print(fit(table, ctx.console, "metric", "step"))
