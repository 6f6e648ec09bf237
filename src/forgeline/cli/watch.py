"""Watching an execution from the terminal: a live table of its steps until it ends."""

from __future__ import annotations

import time

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.render import status_text, steps_table
from forgeline.engine.execution import PipelineExecution
from forgeline.store.metadata.records import ExecutionStatus


def watch(execution: PipelineExecution, ctx: CliContext, interval: float = 0.2) -> ExecutionStatus:
    """Show a live table of the execution's steps until it ends; Ctrl-C stops the execution."""

    def view() -> Group:
        record = execution.record()
        header = Text.assemble(f"{record.pipeline_name} ", (record.id, "bold"), "  ",
                               status_text(record.status.value))
        return Group(header, steps_table(execution.list_steps()))

    if not ctx.console.is_terminal:  # logs and pipes get the final table once, not a redraw per tick
        try:
            execution.wait()
        except KeyboardInterrupt:
            execution.stop()
        status = execution.wait()
        ctx.console.print(view())
        return status
    with Live(view(), console=ctx.console, refresh_per_second=8, transient=False) as live:
        while True:
            try:
                status = execution.status
                live.update(view())
                if status.is_terminal:
                    break
                time.sleep(interval)
            except KeyboardInterrupt:
                ctx.console.print(f"stopping execution {execution.id} (Ctrl-C again leaves it running)")
                execution.stop()
                try:
                    status = execution.wait()
                except KeyboardInterrupt:
                    status = execution.status
                break
    return status


def finish(execution: PipelineExecution, ctx: CliContext, detach: bool) -> None:
    """Print the id (detached) or watch to the end; exit non-zero unless the execution succeeded."""
    if detach:
        ctx.console.print(execution.id)
        return
    status = watch(execution, ctx)
    record = execution.record()
    line = Text.assemble("execution ", (record.id, "bold"), " ", status_text(status.value))
    if status != ExecutionStatus.SUCCEEDED:
        line.append(f": {record.failure_reason or ''}")
        ctx.console.print(line)
        raise typer.Exit(1)
    ctx.console.print(line)
