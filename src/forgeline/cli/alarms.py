"""``forgeline alarms``: events sent to webhooks, email and commands by the server, and their delivery history."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from forgeline.cli.alarm_access import open_alarms
from forgeline.cli.output import JsonOption, make_table, one_line, print_json, short_when
from forgeline.store.metadata.alarm_store import AlarmDelivery, AlarmRecord

app = typer.Typer(help="Alarms: events sent to webhooks, email and commands by the server.", no_args_is_help=True)

NAME = Annotated[str, typer.Argument(help="Alarm name.")]
STATUS_STYLE = {"delivered": "green", "failed": "red", "pending": "cyan", "dropped": "yellow"}


@app.command("create")
def create(
    name: NAME,
    on: Annotated[list[str], typer.Option("--on", help="Event to listen to (repeatable): execution.started, "
                                          "execution.succeeded, execution.failed, execution.stopped, step.failed, "
                                          "model.registered, model.approved, model.rejected, trigger.rejected, "
                                          "metric.")],
    to: Annotated[list[str], typer.Option("--to", help="Where to send it (repeatable): webhook:URL, "
                                          "email:ADDRESS[,ADDRESS] or command:COMMAND.")],
    pipeline: Annotated[str | None, typer.Option("--pipeline", help="Only events of this pipeline.")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Only events of this model package group.")] = None,
    when: Annotated[str | None, typer.Option(
        "--when", help="For --on metric: a condition on a step's properties or metrics, e.g. "
                       "\"steps.Compare.properties.deviation.score_drop > 0.05\".")] = None,
) -> None:
    """Create an alarm; a running `forgeline server` delivers every event it matches."""
    access = open_alarms()
    record = access.create(name, on, to, pipeline=pipeline, group=group, when=when)
    access.console.print(f"alarm {record.name} created: {_summary(record)}", highlight=False)


@app.command("list")
def list_alarms(as_json: JsonOption = False) -> None:
    """Every alarm with its events, filters and targets."""
    access = open_alarms()
    records = access.list_alarms()
    if as_json:
        print_json(records)
        return
    if not records:
        access.console.print("no alarms yet: `forgeline alarms create NAME --on EVENT --to TARGET`")
        return
    table = make_table("name", "state", "events", "filters", "targets")
    for record in records:
        table.add_row(Text(record.name), _state(record), ", ".join(record.events), _filters(record) or "-",
                      Text(", ".join(record.targets)))
    access.console.print(table)


@app.command("describe")
def describe(name: NAME, as_json: JsonOption = False) -> None:
    """One alarm in full, with its latest deliveries."""
    access = open_alarms()
    record = access.get(name)
    deliveries = access.history(10, name)
    if as_json:
        print_json({"alarm": record, "deliveries": deliveries})
        return
    console = access.console
    console.print(f"alarm {record.name} ({_state(record)})", highlight=False)
    console.print(f"  events:    {', '.join(record.events)}", highlight=False)
    if record.pipeline_name:
        console.print(f"  pipeline:  {record.pipeline_name}", highlight=False)
    if record.group_name:
        console.print(f"  group:     {record.group_name}", highlight=False)
    if record.condition:
        console.print(f"  when:      {record.condition}", highlight=False)
    for target in record.targets:
        console.print(f"  to:        {target}", highlight=False)
    console.print(f"  created:   {short_when(record.created_at)}", highlight=False)
    if deliveries:
        console.print("latest deliveries:")
        console.print(_history_table(deliveries))


@app.command("pause")
def pause(name: NAME) -> None:
    """Stop matching new events (deliveries already due still go out)."""
    access = open_alarms()
    access.set_paused(name, True)
    access.console.print(f"alarm {name} paused", highlight=False)


@app.command("resume")
def resume(name: NAME) -> None:
    """Match new events again."""
    access = open_alarms()
    access.set_paused(name, False)
    access.console.print(f"alarm {name} resumed", highlight=False)


@app.command("delete")
def delete(name: NAME) -> None:
    """Delete an alarm; its delivery history stays."""
    access = open_alarms()
    access.delete(name)
    access.console.print(f"alarm {name} deleted", highlight=False)


@app.command("history")
def history(
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many of the newest deliveries.")] = 50,
    alarm: Annotated[str | None, typer.Option("--alarm", help="Only this alarm's deliveries.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Every delivery, newest first: delivered, pending a retry, failed, or dropped (its alarm paused first)."""
    access = open_alarms()
    deliveries = access.history(limit, alarm)
    if as_json:
        print_json(deliveries)
        return
    if not deliveries:
        access.console.print("no deliveries yet")
        return
    access.console.print(_history_table(deliveries))


def _history_table(deliveries: list[AlarmDelivery]) -> Table:
    table = make_table("id", "alarm", "event", "subject", "target", "status", "tries", "when", "last error",
                       right=("id", "tries"))
    for delivery in deliveries:
        moment = delivery.delivered_at or delivery.next_attempt_at or delivery.created_at
        table.add_row(str(delivery.id), Text(delivery.alarm_name), delivery.event_kind or "-",
                      Text(delivery.event_subject or "-"), Text(delivery.target),
                      Text(delivery.status.value, style=STATUS_STYLE.get(delivery.status.value, "")),
                      str(delivery.attempts), short_when(moment), one_line(delivery.last_error))
    return table


def _state(record: AlarmRecord) -> str:
    return "paused" if record.paused else "active"


def _filters(record: AlarmRecord) -> str:
    parts = []
    if record.pipeline_name:
        parts.append(f"pipeline={record.pipeline_name}")
    if record.group_name:
        parts.append(f"group={record.group_name}")
    if record.condition:
        parts.append(f"when {record.condition}")
    return " ".join(parts)


def _summary(record: AlarmRecord) -> str:
    filters = _filters(record)
    return (f"on {', '.join(record.events)}" + (f" ({filters})" if filters else "")
            + f" to {', '.join(record.targets)}")

