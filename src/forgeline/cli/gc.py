"""``forgeline gc``: remove old executions and leftovers; the report both it and ``executions delete`` print."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.moments import parse_age
from forgeline.engine.housekeeping import Housekeeper, HousekeepingReport
from forgeline.jobs.code_folder import format_size

SHOWN_KEPT = 20


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


def gc(
    older_than: Annotated[str, typer.Option("--older-than", help="Remove executions that ended longer ago than "
                                            "this, e.g. 30d, 12h, 2w.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would go and how much it frees.")]
    = False,
) -> None:
    """Remove finished executions older than --older-than with their job folders, logs and unused artifacts.

    Also removes leftovers no execution owns (folders of deleted executions, code copied by a registration that
    crashed), code snapshots nothing names any more and checkouts of snapshots no unfinished execution runs
    (both once a day old). Artifacts a kept execution, a live cache entry or a registered model package uses
    are kept.
    """
    age = parse_age(older_than, "--older-than")
    ctx = CliContext()
    print_report(housekeeper(ctx, dry_run).collect(age), ctx.console)
