"""``forgeline run``: start a pipeline from its file and watch its steps live."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.render import status_text, steps_table
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.launch import start_execution
from forgeline.engine.loader import load_pipeline
from forgeline.errors import ParameterError
from forgeline.store.metadata.records import ExecutionStatus


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``Name=Value`` pairs from ``-p`` options (the value may itself contain '=')."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"-p {pair!r}: expected Name=Value")
        overrides[name.strip()] = value
    return overrides


def watch(execution: PipelineExecution, ctx: CliContext, interval: float = 0.2) -> ExecutionStatus:
    """Show a live table of the execution's steps until it ends; Ctrl-C stops the execution."""

    def view() -> Group:
        record = execution.record()
        header = Text.assemble(f"{record.pipeline_name} ", (record.id, "bold"), "  ",
                               status_text(record.status.value))
        return Group(header, steps_table(execution.list_steps()))

    with Live(view(), console=ctx.console, refresh_per_second=8, transient=False) as live:
        while True:
            try:
                status = execution.status
                live.update(view())
                if status.is_terminal:
                    return status
                time.sleep(interval)
            except KeyboardInterrupt:
                ctx.console.print(f"stopping execution {execution.id} (Ctrl-C again leaves it running)")
                execution.stop()
                try:
                    return execution.wait()
                except KeyboardInterrupt:
                    return execution.status


def run(
    pipeline_file: Annotated[str, typer.Argument(help="Pipeline file, optionally file.py:variable.")],
    parameter: Annotated[list[str] | None, typer.Option("-p", "--parameter", help="Name=Value override.")] = None,
    pipeline_name: Annotated[str | None, typer.Option("--pipeline", help="Pipeline name in the file.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start and return without watching.")] = False,
) -> None:
    """Start a pipeline and watch its steps; exit 0 when it succeeds."""
    ctx = CliContext()
    pipeline = load_pipeline(pipeline_file, pipeline_name)
    execution = start_execution(pipeline, parse_overrides(parameter or []), settings=ctx.settings)
    if detach:
        ctx.console.print(execution.id)
        return
    status = watch(execution, ctx)
    record = execution.record()
    if status != ExecutionStatus.SUCCEEDED:
        ctx.console.print(Text.assemble(("execution ", ""), (record.id, "bold"), " ",
                                        status_text(status.value), f": {record.failure_reason or ''}"))
        raise typer.Exit(1)
    ctx.console.print(Text.assemble("execution ", (record.id, "bold"), " ", status_text(status.value)))
