"""``forgeline schedules``: pipelines started on a cron schedule by a running ``forgeline server``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.output import JsonOption, make_table, one_line, print_json
from forgeline.cli.render import when
from forgeline.cli.run import parse_overrides
from forgeline.cli.trigger_access import access
from forgeline.store.metadata.schedule_store import FireOutcome, ScheduleRecord
from forgeline.triggers.definitions import ScheduleSpec

app = typer.Typer(help="Schedules: pipelines a forgeline server starts on a cron schedule.", no_args_is_help=True)

NAME = Annotated[str, typer.Argument(help="Schedule name.")]
OUTCOME_STYLE = {FireOutcome.STARTED: "green", FireOutcome.SKIPPED: "yellow", FireOutcome.FAILED: "red",
                 FireOutcome.PENDING: "cyan", FireOutcome.REJECTED: "red"}


@app.command("create")
def create(
    name: NAME,
    pipeline_file: Annotated[str, typer.Option("--pipeline", help="Pipeline file (file.py or file.py:variable).")],
    cron: Annotated[str, typer.Option("--cron", help='Cron expression, five fields, e.g. "0 6 * * MON".')],
    timezone: Annotated[str, typer.Option("--timezone", help="IANA time zone the cron is read in.")] = "UTC",
    parameter: Annotated[list[str] | None, typer.Option("-p", "--parameter", help="Name=Value override.")] = None,
    catchup: Annotated[str, typer.Option("--catchup", help="After downtime: last (one execution for the latest "
                                         "missed due time) or none (wait for the next).")] = "last",
    overlap: Annotated[str, typer.Option("--overlap", help="While the previous execution runs: skip (record the "
                                         "fire as skipped) or allow.")] = "skip",
    as_json: JsonOption = False,
) -> None:
    """Create a schedule: the pipeline file is stored now, a server starts it at every due time."""
    ctx = CliContext()
    spec = ScheduleSpec(name, cron, timezone, parse_overrides(parameter or []), catchup, overlap)
    record = access(ctx).create_schedule(spec, pipeline_file)
    if as_json:
        print_json(record)
        return
    ctx.console.print(f"schedule {record.name} created: {record.pipeline.pipeline_name} "
                      f"v{record.pipeline.pipeline_version} at \"{record.cron}\" ({record.timezone}), "
                      f"next {when(record.next_fire_at)}", highlight=False)


@app.command("list")
def list_schedules(as_json: JsonOption = False) -> None:
    """Every schedule with its next fire, last fire and last execution."""
    ctx = CliContext()
    records = access(ctx).list_schedules()
    if as_json:
        print_json(records)
        return
    table = make_table("NAME", "PIPELINE", "CRON", "TIMEZONE", "STATE", "NEXT FIRE", "LAST FIRE", "LAST OUTCOME",
                       "LAST EXECUTION")
    for record in records:
        table.add_row(record.name, f"{record.pipeline.pipeline_name} v{record.pipeline.pipeline_version}",
                      record.cron, record.timezone, _state(record), when(record.next_fire_at),
                      when(record.last_fire_at), _outcome(record.last_outcome), record.last_execution_id or "-")
    ctx.console.print(table)


@app.command("describe")
def describe(name: NAME, as_json: JsonOption = False) -> None:
    """A schedule's settings, next fire, and its latest fires with their executions or reasons."""
    ctx = CliContext()
    description = access(ctx).describe_schedule(name)
    if as_json:
        print_json(description)
        return
    record = description.schedule
    console = ctx.console
    console.print(Text.assemble(("Schedule ", "bold"), record.name, "  ", _state(record)))
    pipeline = record.pipeline
    for label, value in (
        ("pipeline", f"{pipeline.pipeline_name} v{pipeline.pipeline_version} (code {pipeline.code_snapshot or '-'})"),
        ("from", pipeline.pipeline_source or "-"),
        ("cron", f"{record.cron} ({record.timezone})"),
        ("parameters", ", ".join(f"{k}={v}" for k, v in record.parameters.items()) or "-"),
        ("catch-up", record.catchup.value), ("overlap", record.overlap.value),
        ("next fire", when(record.next_fire_at)), ("last fire", when(record.last_fire_at)),
        ("last execution", record.last_execution_id or "-"),
    ):
        console.print(f"  {label + ':':<16}{value}", highlight=False)
    table = make_table("DUE", "OUTCOME", "EXECUTION", "REASON", title="Latest fires")
    for fire in description.fires:
        table.add_row(when(fire.due_at), _outcome(fire.outcome), fire.execution_id or "-", one_line(fire.reason))
    console.print(table)


@app.command("pause")
def pause(name: NAME, as_json: JsonOption = False) -> None:
    """Pause a schedule: due times while paused are not caught up."""
    _pause(name, True, as_json)


@app.command("resume")
def resume(name: NAME, as_json: JsonOption = False) -> None:
    """Resume a schedule from its next due time."""
    _pause(name, False, as_json)


@app.command("delete")
def delete(name: NAME) -> None:
    """Delete a schedule and its fire history (executions it started stay)."""
    ctx = CliContext()
    access(ctx).delete_schedule(name)
    ctx.console.print(f"schedule {name} deleted", highlight=False)


def _pause(name: str, paused: bool, as_json: bool) -> None:
    ctx = CliContext()
    record = access(ctx).pause_schedule(name, paused)
    if as_json:
        print_json(record)
        return
    ctx.console.print(f"schedule {name} {'paused' if paused else 'resumed, next ' + when(record.next_fire_at)}",
                      highlight=False)


def _state(record: ScheduleRecord) -> Text:
    return Text("paused", style="yellow") if record.paused else Text("active", style="green")


def _outcome(outcome: FireOutcome | None) -> Text:
    return Text(outcome.value, style=OUTCOME_STYLE.get(outcome, "")) if outcome else Text("-")
