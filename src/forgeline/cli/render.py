"""Rich renderings shared by the CLI commands: step tables, times, statuses."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich import box
from rich.table import Table
from rich.text import Text

from forgeline.store.metadata.records import ExecutionRecord, StepRun

STATUS_STYLE = {
    "Succeeded": "green", "Failed": "red", "Stopped": "yellow", "Stopping": "yellow",
    "Executing": "cyan", "Starting": "cyan", "Pending": "dim", "Skipped": "dim",
}


def status_text(status: str) -> Text:
    """A status word in its colour."""
    return Text(status, style=STATUS_STYLE.get(status, ""))


def when(moment: datetime | None) -> str:
    """A timestamp in local time, or '-'."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def duration(start: datetime | None, end: datetime | None) -> str:
    """Elapsed time between two moments ('-' when not started; running steps count up to now)."""
    if start is None:
        return "-"
    seconds = ((end or datetime.now(start.tzinfo)) - start).total_seconds()
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def steps_table(steps: Sequence[StepRun], title: str | None = None) -> Table:
    """One row per step: status, attempts, duration, cache and failure reason."""
    table = Table(title=title, title_justify="left")
    for column in ("step", "kind", "status", "attempts", "duration"):
        table.add_column(column, no_wrap=True)
    table.add_column("note", overflow="fold", ratio=1)
    for run in steps:
        note = f"cache hit from {run.cache_source}" if run.cache_hit else (run.failure_reason or "")
        table.add_row(Text(run.name), run.kind, status_text(run.status.value), str(run.attempts or ""),
                      duration(run.started_at, run.ended_at), Text(note))
    return table


def executions_table(records: Sequence[ExecutionRecord]) -> Table:
    """One row per execution, newest first; ids and statuses never wrap, reasons fold."""
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=12)
    table.add_column("pipeline", overflow="fold")
    table.add_column("v", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("started", no_wrap=True)
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("failure reason", overflow="fold", min_width=14, ratio=1)
    for record in records:
        started = record.started_at.astimezone().strftime("%m-%d %H:%M:%S") if record.started_at else "-"
        table.add_row(record.id, Text(record.pipeline_name), str(record.pipeline_version),
                      status_text(record.status.value), started,
                      duration(record.started_at, record.ended_at), Text(record.failure_reason or ""))
    return table
