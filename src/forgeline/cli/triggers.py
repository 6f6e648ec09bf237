"""``forgeline triggers``: pipelines a running ``forgeline server`` starts when a file arrives in a folder or prefix."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.output import JsonOption, make_table, one_line, print_json
from forgeline.cli.render import when
from forgeline.cli.run import parse_overrides
from forgeline.cli.schedules import OUTCOME_STYLE
from forgeline.cli.trigger_access import access
from forgeline.store.metadata.trigger_store import TriggerRecord
from forgeline.triggers.definitions import TriggerSpec

app = typer.Typer(help="File triggers: pipelines a forgeline server starts when a file arrives.",
                  no_args_is_help=True)

NAME = Annotated[str, typer.Argument(help="Trigger name.")]


@app.command("create")
def create(
    name: NAME,
    pipeline_file: Annotated[str, typer.Option("--pipeline", help="Pipeline file (file.py or file.py:variable).")],
    watch: Annotated[str, typer.Option("--watch", help="Folder or prefix to watch: ./folder or "
                                       "s3://bucket/prefix/ (opened with FORGELINE_STORAGE_OPTIONS).")],
    pattern: Annotated[str, typer.Option("--pattern", help='File names that count, e.g. "*.json".')] = "*",
    poll_seconds: Annotated[float, typer.Option("--poll-seconds", help="How often the server looks.")] = 5.0,
    parameter: Annotated[list[str] | None, typer.Option("-p", "--parameter", help="Name=Value for every "
                                                        "execution (a file's pipeline_parameters win).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Create a file trigger: each new file starts one execution with its pipeline_parameters."""
    ctx = CliContext()
    spec = TriggerSpec(name, watch, pattern, poll_seconds, parse_overrides(parameter or []))
    record = access(ctx).create_trigger(spec, pipeline_file)
    if as_json:
        print_json(record)
        return
    ctx.console.print(f"trigger {record.name} created: {record.pipeline.pipeline_name} "
                      f"v{record.pipeline.pipeline_version} for each new {record.pattern} in {record.watch} "
                      f"(every {record.poll_seconds:g} s)", highlight=False)


@app.command("list")
def list_triggers(as_json: JsonOption = False) -> None:
    """Every trigger with what it watches, how many files it saw, and its last execution."""
    ctx = CliContext()
    records = access(ctx).list_triggers()
    if as_json:
        print_json(records)
        return
    table = make_table("NAME", "PIPELINE", "WATCH", "PATTERN", "STATE", "SEEN", "LAST FILE", "LAST EXECUTION",
                       right=("SEEN",))
    for record in records:
        table.add_row(record.name, f"{record.pipeline.pipeline_name} v{record.pipeline.pipeline_version}",
                      record.watch, record.pattern, _state(record), str(record.objects_seen),
                      when(record.last_event_at), record.last_execution_id or "-")
    ctx.console.print(table)


@app.command("describe")
def describe(name: NAME, as_json: JsonOption = False) -> None:
    """A trigger's settings and the latest files it saw, with their executions or why they were rejected."""
    ctx = CliContext()
    description = access(ctx).describe_trigger(name)
    if as_json:
        print_json(description)
        return
    record = description.trigger
    console = ctx.console
    console.print(Text.assemble(("Trigger ", "bold"), record.name, "  ", _state(record)))
    pipeline = record.pipeline
    for label, value in (
        ("pipeline", f"{pipeline.pipeline_name} v{pipeline.pipeline_version} (code {pipeline.code_snapshot or '-'})"),
        ("from", pipeline.pipeline_source or "-"),
        ("watch", f"{record.watch}  pattern {record.pattern}  every {record.poll_seconds:g} s"),
        ("parameters", ", ".join(f"{k}={v}" for k, v in record.parameters.items()) or "-"),
        ("files seen", str(record.objects_seen)), ("last file", when(record.last_event_at)),
    ):
        console.print(f"  {label + ':':<14}{value}", highlight=False)
    table = make_table("SEEN", "FILE", "OUTCOME", "EXECUTION", "REASON", title="Latest files")
    for item in description.objects:
        table.add_row(when(item.seen_at), item.key, Text(item.outcome.value, OUTCOME_STYLE.get(item.outcome, "")),
                      item.execution_id or "-", one_line(item.reason))
    console.print(table)


@app.command("pause")
def pause(name: NAME, as_json: JsonOption = False) -> None:
    """Pause a trigger: files arriving meanwhile are handled when it resumes."""
    _pause(name, True, as_json)


@app.command("resume")
def resume(name: NAME, as_json: JsonOption = False) -> None:
    """Resume a trigger; files that arrived while it was paused start executions then."""
    _pause(name, False, as_json)


@app.command("delete")
def delete(name: NAME) -> None:
    """Delete a trigger and the record of files it saw (executions it started stay)."""
    ctx = CliContext()
    access(ctx).delete_trigger(name)
    ctx.console.print(f"trigger {name} deleted", highlight=False)


def _pause(name: str, paused: bool, as_json: bool) -> None:
    ctx = CliContext()
    record = access(ctx).pause_trigger(name, paused)
    if as_json:
        print_json(record)
        return
    ctx.console.print(f"trigger {name} {'paused' if paused else 'resumed'}", highlight=False)


def _state(record: TriggerRecord) -> Text:
    return Text("paused", style="yellow") if record.paused else Text("active", style="green")
