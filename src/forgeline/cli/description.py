"""``forgeline executions describe`` for people: tables cut to the terminal, then the whole texts and URIs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from forgeline.cli.output import fit, make_table, one_line, print_paragraph, print_uris, short_when
from forgeline.cli.render import (
    attempts_seconds,
    gaps_seconds,
    seconds_text,
    status_text,
    steps_table,
    when,
)
from forgeline.store.metadata.records import ExecutionRecord, StepAttempt, StepRun, StepStatus

_STARTER_DETAILS = ("name", "actor", "uri", "due_at")
"""What of a started_by record the text shows, in this order, after its kind."""


def started_by_text(started_by: Mapping[str, Any] | None) -> str:
    """Who or what started an execution, in words: ``schedule nightly (due 2026-...)``, ``cli (user ann)``."""
    if not started_by:
        return "unknown (recorded before executions kept who started them)"
    labels = {"name": "", "actor": "user ", "uri": "", "due_at": "due "}
    details = [f"{labels[key]}{started_by[key]}" for key in _STARTER_DETAILS if started_by.get(key)]
    kind = str(started_by.get("kind") or "unknown")
    return f"{kind} ({', '.join(details)})" if details else kind


def print_description(console: Console, record: ExecutionRecord, steps: Sequence[StepRun],
                      attempts: Sequence[StepAttempt], orchestrator_note: str | None = None,
                      code: str | None = None) -> None:
    """The execution's header, parameters, steps, attempts, every failure reason in full, and its outputs.

    ``code``: a line about the code snapshot it runs.
    """
    console.print(Text.assemble(("execution ", "bold"), record.id, f"  pipeline {record.pipeline_name} "
                                f"v{record.pipeline_version}"), soft_wrap=True)
    console.print(Text.assemble("status: ", status_text(record.status.value, orchestrator_note)))
    if orchestrator_note and "resumed" not in orchestrator_note:
        console.print(f"{orchestrator_note} — `forgeline executions resume {record.id}`", style="red",
                      soft_wrap=True)
    console.print(f"started: {when(record.started_at)}   ended: {when(record.ended_at)}")
    console.print(Text(f"started by: {started_by_text(record.started_by)}"), soft_wrap=True)
    if record.failure_reason:
        print_paragraph(console, f"failure reason: {record.failure_reason}")
    if code:
        console.print(f"code: {code}", soft_wrap=True)
    if record.parent_execution_id:
        console.print(f"outputs of unselected steps taken from execution {record.parent_execution_id}")
    if record.parameters:
        console.print("parameters:")
        print_uris(console, [(name, repr(value)) for name, value in record.parameters.items()])
    else:
        console.print("parameters: none")
    console.print(steps_table(steps, attempts, console, title="steps"))
    if attempts:
        console.print(attempts_table(attempts, console))
    print_failures(console, steps, attempts)
    outputs = [(f"{run.name} {name}", uri) for run in steps for name, uri in run.outputs.items()]
    outputs += [(f"{run.name} return", json.dumps(run.properties["Return"])) for run in steps
                if "Return" in run.properties]
    if outputs:
        console.print("outputs:")
        print_uris(console, outputs)


def attempts_table(attempts: Sequence[StepAttempt], console: Console) -> Table:
    """Every attempt with its own duration and the wait before it (back-off, restart), failures on one line."""
    table = make_table("step", "attempt", "status", "started", "duration", "waited", "failure",
                       right=("attempt", "duration", "waited"), title="attempts")
    previous: dict[str, StepAttempt] = {}
    for attempt in attempts:
        before = previous.get(attempt.step_name)
        waited = gaps_seconds([before, attempt]) if before is not None else []
        failure = f"{attempt.failure_kind}: {attempt.failure_reason}" if attempt.failure_kind else ""
        table.add_row(Text(attempt.step_name), str(attempt.attempt), status_text(attempt.status.value),
                      short_when(attempt.started_at), seconds_text(attempts_seconds([attempt])),
                      seconds_text(waited[0]) if waited else "", one_line(failure))
        previous[attempt.step_name] = attempt
    return fit(table, console, "failure")


def print_failures(console: Console, steps: Sequence[StepRun], attempts: Sequence[StepAttempt]) -> None:
    """The whole failure reason of every failed step and attempt (the tables show only their first line)."""
    texts: list[tuple[str, str]] = []
    for run in steps:
        if run.failure_reason and run.status in (StepStatus.FAILED, StepStatus.STOPPED):
            texts.append((run.name, run.failure_reason))
    for attempt in attempts:
        if attempt.failure_reason:
            text = f"{attempt.failure_kind}: {attempt.failure_reason}" if attempt.failure_kind \
                else attempt.failure_reason
            texts.append((f"{attempt.step_name} attempt {attempt.attempt}", text))
    if not texts:
        return
    console.print("failures:")
    for label, text in texts:
        print_paragraph(console, f"{label}: {text}", indent=2)
