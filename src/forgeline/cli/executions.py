"""``forgeline executions list|describe|stop`` and ``forgeline logs``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.render import executions_table, status_text, steps_table, when
from forgeline.cli.watch import finish
from forgeline.engine.recovery import resume_execution, retry_execution
from forgeline.errors import NotFoundError

app = typer.Typer(help="Inspect and control executions.", no_args_is_help=True)


@app.command("list")
def list_executions(
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only this pipeline.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
) -> None:
    """List executions, newest first."""
    ctx = CliContext()
    records = ctx.store.list_executions(pipeline, limit=limit)
    if not records:
        ctx.console.print("no executions yet")
        return
    ctx.console.print(executions_table(records))


@app.command("describe")
def describe(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Parameters, steps, statuses, times, outputs and failure reason of an execution."""
    ctx = CliContext()
    record = ctx.store.get_execution(execution_id)
    steps = ctx.store.list_step_runs(record.id)
    if as_json:
        doc = {**record.__dict__, "steps": [s.__dict__ for s in steps]}
        sys.stdout.write(json.dumps(doc, default=str, indent=2) + "\n")
        return
    console = ctx.console
    console.print(f"[bold]execution[/] {record.id}  pipeline {record.pipeline_name} v{record.pipeline_version}")
    console.print("status: ", status_text(record.status.value))
    console.print(f"started: {when(record.started_at)}   ended: {when(record.ended_at)}")
    if record.failure_reason:
        console.print(Text.assemble(("failure reason: ", "red"), record.failure_reason))
    if record.parent_execution_id:
        console.print(f"outputs of unselected steps taken from execution {record.parent_execution_id}")
    params = Table("parameter", "value", title="parameters", title_justify="left")
    for name, value in record.parameters.items():
        params.add_row(name, Text(repr(value)))
    console.print(params if params.row_count else "parameters: none")
    console.print(steps_table(steps, title="steps"))
    attempts = ctx.store.list_attempts(record.id)
    history = Table("step", "attempt", "status", "started", "ended", "failure", title="attempts",
                    title_justify="left")
    for attempt in attempts:
        failure = f"{attempt.failure_kind}: {attempt.failure_reason}" if attempt.failure_kind else ""
        history.add_row(Text(attempt.step_name), str(attempt.attempt), status_text(attempt.status.value),
                        when(attempt.started_at), when(attempt.ended_at), Text(failure))
    if history.row_count:
        console.print(history)
    outputs = Table("step", "output", "uri", title="outputs", title_justify="left")
    for run in steps:
        for name, uri in run.outputs.items():
            outputs.add_row(run.name, name, Text(uri))
        if "Return" in run.properties:
            outputs.add_row(run.name, "return", Text(json.dumps(run.properties["Return"])))
    if outputs.row_count:
        console.print(outputs)


@app.command("stop")
def stop(execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")]) -> None:
    """Stop an execution: running jobs are ended and no new step starts."""
    ctx = CliContext()
    record = ctx.store.request_stop(ctx.store.get_execution(execution_id).id)
    ctx.console.print(f"execution {record.id}: ", status_text(record.status.value))


@app.command("retry")
def retry(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    detach: Annotated[bool, typer.Option("--detach", help="Return without watching.")] = False,
) -> None:
    """Rerun only the failed, stopped and not-yet-run steps of a finished execution."""
    ctx = CliContext()
    finish(retry_execution(execution_id, ctx.settings, fork=True), ctx, detach)


@app.command("resume")
def resume(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    detach: Annotated[bool, typer.Option("--detach", help="Return without watching.")] = False,
) -> None:
    """Continue an execution whose orchestrator died (steps that had succeeded are not re-run)."""
    ctx = CliContext()
    finish(resume_execution(execution_id, ctx.settings, fork=True), ctx, detach)


def logs(
    execution_id: Annotated[str, typer.Argument(help="Execution id or unique prefix.")],
    step: Annotated[str, typer.Argument(help="Step name.")],
    attempt: Annotated[int | None, typer.Option(help="Attempt number (default: the latest).")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing while the step runs.")] = False,
) -> None:
    """Print a step's stdout and stderr."""
    ctx = CliContext()
    record = ctx.store.get_execution(execution_id)
    run = ctx.store.get_step_run(record.id, step)
    attempts = [a for a in ctx.store.list_attempts(record.id, step) if a.log_path]
    if attempt is not None:
        attempts = [a for a in attempts if a.attempt == attempt]
    if not attempts:
        raise NotFoundError(f"step {step!r} of execution {record.id} has no logs "
                            f"(status {run.status.value}{', ' + run.failure_reason if run.failure_reason else ''})")
    chosen = attempts[-1]
    path = Path(chosen.log_path or "")
    offset = 0
    while True:
        if path.exists():
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
                offset += len(chunk)
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
        if not follow or ctx.store.get_step_run(record.id, step).status.is_terminal:
            if follow and path.exists() and path.stat().st_size > offset:
                continue
            return
        time.sleep(0.2)
