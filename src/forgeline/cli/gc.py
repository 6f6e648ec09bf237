"""``forgeline gc``: remove old executions and leftovers; the report both it and ``executions delete`` print."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.moments import parse_age
from forgeline.engine.housekeeping import Housekeeper, HousekeepingReport
from forgeline.jobs.code_folder import format_size
from forgeline.triggers.history import collect_trigger_objects

SHOWN_KEPT = 20
HISTORY_RETENTION_ENV = "FORGELINE_HISTORY_RETENTION"


def housekeeper(ctx: CliContext, dry_run: bool) -> Housekeeper:
    """A housekeeper over this invocation's stores."""
    runtime = ctx.runtime
    return Housekeeper(runtime.store, runtime.artifacts, runtime.settings, executor=runtime.executor_factory(1),
                       dry_run=dry_run)


def print_report(report: HousekeepingReport, console: Console) -> None:
    """One line per removed thing (its size when it held files), what was kept and why, and the bytes freed."""
    verb = "would remove" if report.dry_run else "removed"
    for item in report.removed:
        size = f"  ({format_size(item.size)})" if item.size else ""
        console.print(Text(f"{verb} {item.kind} {item.location}{size}"), soft_wrap=True)
    for location, users in report.kept[:SHOWN_KEPT]:
        console.print(Text(f"kept {location}: used by {users}"), soft_wrap=True)
    if len(report.kept) > SHOWN_KEPT:
        console.print(f"kept {len(report.kept) - SHOWN_KEPT} more artifacts that are still used")
    count = len(report.executions)
    snapshots = sum(item.kind == "code snapshot" for item in report.removed)
    summary = (f"{'would free' if report.dry_run else 'freed'} {format_size(report.bytes_freed)}: "
               f"{count} execution{'' if count == 1 else 's'}, "
               + (f"{snapshots} code snapshot{'' if snapshots == 1 else 's'}, " if snapshots else "")
               + f"{len(report.removed) - count - snapshots} folders, artifacts and cache entries")
    console.print(Text(summary + (" (dry run: nothing was removed)" if report.dry_run else "")), soft_wrap=True)


def collect_server_history(ctx: CliContext, older_than: str, dry_run: bool) -> None:
    """Forget the server's alarm events, trigger objects and schedule fires ``older_than``; print how many."""
    age = parse_age(older_than, "--history-older-than")
    store, before = ctx.runtime.store, datetime.now(UTC) - age
    events, deliveries = store.collect_alarm_events(before, dry_run=dry_run)
    triggers = collect_trigger_objects(store, before, dry_run=dry_run,
                                       options_by_protocol=ctx.runtime.settings.storage_options)
    fires = store.collect_schedule_fires(before, dry_run=dry_run)
    for name, why in triggers.kept:
        ctx.console.print(Text(f"kept the files trigger {name} saw: {why}"), soft_wrap=True)
    ctx.console.print(Text(
        f"{'would forget' if dry_run else 'forgot'} server history older than {older_than}: "
        f"{events} alarm event{'' if events == 1 else 's'} ({deliveries} deliveries), "
        f"{triggers.collected} trigger file{'' if triggers.collected == 1 else 's'} no longer there, "
        f"{fires} schedule fire{'' if fires == 1 else 's'}"), soft_wrap=True)


def gc(
    older_than: Annotated[str, typer.Option("--older-than", help="Remove executions that ended longer ago than "
                                            "this, e.g. 30d, 12h, 2w.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go and how much it frees.")]
    = False,
    history_older_than: Annotated[str, typer.Option(
        "--history-older-than", envvar=HISTORY_RETENTION_ENV,
        help="Forget alarm events that were delivered, failed or dropped, trigger files no longer in their "
             "folder, and schedule fires, older than this (each schedule's latest fire stays).")] = "30d",
) -> None:
    """Remove finished executions older than --older-than with their job folders, logs and unused artifacts.

    Also removes leftovers no execution owns (folders of deleted executions, code copied by a registration that
    crashed), code snapshots nothing names any more and checkouts of snapshots no unfinished execution runs
    (both once a day old). Artifacts a kept execution, a live cache entry or a registered model package uses
    are kept. The server's history older than --history-older-than (FORGELINE_HISTORY_RETENTION, 30d) goes
    too; never an alarm event still to be delivered, nor a trigger file still in its folder (it would start
    again).
    """
    age = parse_age(older_than, "--older-than")
    parse_age(history_older_than, "--history-older-than")  # a bad one is refused before anything goes
    ctx = CliContext()
    print_report(housekeeper(ctx, dry_run).collect(age), ctx.console)
    collect_server_history(ctx, history_older_than, dry_run)
