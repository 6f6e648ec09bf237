"""Watching an execution from the terminal: a live table of its steps until it ends."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import Protocol

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.render import status_text, steps_table
from forgeline.store.metadata.records import (
    ExecutionRecord,
    ExecutionStatus,
    StepAttempt,
    StepEvent,
    StepEventKind,
    StepRun,
)

LIVENESS_CHECK_SECONDS = 1.0
"""While no event comes, how often the watcher reads the execution itself (its orchestrator may be lost)."""


class WatchedExecution(Protocol):
    """What the watcher reads of an execution: a PipelineExecution on the store, or one on a server."""

    id: str

    def record(self) -> ExecutionRecord: ...

    @property
    def status(self) -> ExecutionStatus: ...

    def list_steps(self) -> list[StepRun]: ...

    def list_attempts(self, step_name: str | None = None) -> list[StepAttempt]: ...

    def events(self, after: int | None = None) -> list[StepEvent]: ...

    def stop(self) -> ExecutionStatus: ...

    def wait(self, timeout: float | None = None, poll_interval: float = 0.1) -> ExecutionStatus: ...


class HangUp(KeyboardInterrupt):
    """The terminal closed (SIGHUP): treated like Ctrl-C, but nobody is left to see the output."""


@contextlib.contextmanager
def hangup_as_interrupt() -> Iterator[list[bool]]:
    """While watching, a closed terminal stops the execution as Ctrl-C does, instead of killing only the CLI.

    Yields a cell that turns ``[True]`` once the hang-up came: writes to the closed terminal then fail too.
    """
    seen = [False]

    def hang_up(signum: int, frame: object) -> None:
        seen[0] = True
        raise HangUp

    previous = signal.signal(signal.SIGHUP, hang_up)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGHUP, previous)


def silence_terminal() -> None:
    """Send stdout and stderr to /dev/null: the terminal is gone, and a failed flush at exit would say so."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)


def stop_and_wait(execution: WatchedExecution, ctx: CliContext) -> ExecutionStatus:
    """Ask the execution to stop and wait for its final status; Ctrl-C again returns at once."""
    ctx.console.print(f"stopping execution {execution.id} (Ctrl-C again leaves it running)")
    execution.stop()
    try:
        return execution.wait()
    except KeyboardInterrupt:
        return execution.status


def watch(execution: WatchedExecution, ctx: CliContext, interval: float = 0.2) -> ExecutionStatus:
    """Show a live table of the execution's steps until it ends; Ctrl-C or a closed terminal stops it.

    It follows the execution's step events from a cursor and redraws when new ones come; the records are
    read again only then, and every LIVENESS_CHECK_SECONDS to notice a lost orchestrator.
    """

    def view() -> Group:
        record = execution.record()
        header = Text.assemble(f"{record.pipeline_name} ", (record.id, "bold"), "  ",
                               status_text(record.status.value))
        return Group(header, steps_table(execution.list_steps(), execution.list_attempts(), ctx.console))

    if not ctx.console.is_terminal:  # logs and pipes get the final table once, not a redraw per tick
        try:
            status = execution.wait()
        except HangUp:
            raise
        except KeyboardInterrupt:
            status = stop_and_wait(execution, ctx)
        ctx.console.print(view())
        return status
    cursor = None
    checked = 0.0
    with Live(view(), console=ctx.console, refresh_per_second=8, transient=False) as live:
        while True:
            try:
                events = execution.events(after=cursor)
                ended = any(e.kind == StepEventKind.EXECUTION and e.status is not None
                            and ExecutionStatus(e.status).is_terminal for e in events)
                if events or ended or time.monotonic() - checked >= LIVENESS_CHECK_SECONDS:
                    cursor = events[-1].id if events else cursor
                    checked = time.monotonic()
                    status = execution.status  # a lost orchestrator: one error line, or resumed (auto-resume)
                    live.update(view())
                    if status.is_terminal:
                        return status
                time.sleep(interval)
            except HangUp:
                raise
            except KeyboardInterrupt:
                status = stop_and_wait(execution, ctx)
                live.update(view())  # the final statuses, not those of the moment Ctrl-C was pressed
                return status


def finish(execution: WatchedExecution, ctx: CliContext, detach: bool) -> None:
    """Print the id (detached) or watch to the end; exit non-zero unless the execution succeeded."""
    if detach:
        ctx.console.print(execution.id)
        return
    try:
        with hangup_as_interrupt() as hung_up:
            status = watch(execution, ctx)
    except (HangUp, OSError):  # OSError: the live display's last write to the closed terminal
        if not hung_up[0]:
            raise
        execution.stop()
        silence_terminal()
        raise typer.Exit(128 + signal.SIGHUP) from None
    record = execution.record()
    line = Text.assemble("execution ", (record.id, "bold"), " ", status_text(status.value))
    if record.failure_reason:
        line.append(f": {record.failure_reason}")
    ctx.console.print(line)
    if status != ExecutionStatus.SUCCEEDED:
        raise typer.Exit(1)
