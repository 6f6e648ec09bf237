"""Rich renderings shared by the CLI commands: step tables, times, statuses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from forgeline.cli.output import fit, make_table, one_line, short_when
from forgeline.store.metadata.records import ExecutionRecord, StepAttempt, StepRun

STATUS_STYLE = {
    "Succeeded": "green", "Failed": "red", "Stopped": "yellow", "Stopping": "yellow",
    "Executing": "cyan", "Starting": "cyan", "Pending": "dim", "Skipped": "dim", "Interrupted": "yellow",
}


def status_text(status: str, note: str | None = None) -> Text:
    """A status word in its colour, with a note in brackets after it (in red: something is wrong)."""
    text = Text(status, style=STATUS_STYLE.get(status, ""))
    if note:
        text.append(f" ({note})", style="red")
    return text


def when(moment: datetime | None) -> str:
    """A timestamp in local time, or '-'."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def duration(start: datetime | None, end: datetime | None) -> str:
    """Elapsed time between two moments ('-' when not started; running steps count up to now)."""
    if start is None:
        return "-"
    return seconds_text(((end or datetime.now(start.tzinfo)) - start).total_seconds())


def seconds_text(seconds: float) -> str:
    """A duration for people: milliseconds under a second, else seconds with one decimal."""
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"


def attempts_seconds(attempts: Sequence[StepAttempt]) -> float:
    """Time spent running: the attempts' durations added up (a running attempt counts up to now)."""
    return sum(((a.ended_at or datetime.now(a.started_at.tzinfo)) - a.started_at).total_seconds() for a in attempts)


def gaps_seconds(attempts: Sequence[StepAttempt]) -> list[float]:
    """Time between the end of each attempt and the start of the next (retry back-off, restarts)."""
    return [max(0.0, (later.started_at - earlier.ended_at).total_seconds())
            for earlier, later in zip(attempts, attempts[1:]) if earlier.ended_at is not None]


def step_duration(run: StepRun, attempts: Sequence[StepAttempt]) -> str:
    """A step's running time: its attempts added up, without the waits between them; else its own times."""
    if attempts:
        return seconds_text(attempts_seconds(attempts))
    return duration(run.started_at, run.ended_at)


def step_note(run: StepRun) -> str:
    """What the steps table says beside a step: where a cache hit came from, or why it failed."""
    return f"cache hit from {run.cache_source}" if run.cache_hit else (run.failure_reason or "")


def steps_table(steps: Sequence[StepRun], attempts: Sequence[StepAttempt], console: Console,
                title: str | None = None) -> Table:
    """One row per step: status, attempts, running time, and the cache source or failure reason on one line."""
    table = make_table("step", "kind", "status", "attempts", "duration", "note", right=("attempts", "duration"),
                       title=title)
    by_step: dict[str, list[StepAttempt]] = {}
    for attempt in attempts:
        by_step.setdefault(attempt.step_name, []).append(attempt)
    for run in steps:
        table.add_row(Text(run.name), run.kind, status_text(run.status.value), str(run.attempts or ""),
                      step_duration(run, by_step.get(run.name, [])), one_line(step_note(run)))
    return fit(table, console, "note")


def executions_table(records: Sequence[ExecutionRecord], console: Console,
                     notes: Mapping[str, str] | None = None) -> Table:
    """One row per execution, newest first; ids, statuses and times whole, reasons cut to one line.

    ``notes`` go in brackets after a status: an execution whose orchestrator was lost says so.
    """
    table = make_table("id", "pipeline", "v", "status", "started", "took", "failure reason", right=("v", "took"))
    for record in records:
        table.add_row(record.id, Text(record.pipeline_name), str(record.pipeline_version),
                      status_text(record.status.value, (notes or {}).get(record.id)), short_when(record.started_at),
                      duration(record.started_at, record.ended_at), one_line(record.failure_reason))
    return fit(table, console, "failure reason", "pipeline", droppable=("started", "v", "took"))
