"""``forgeline pipelines list|show``."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.table import Table

from forgeline.cli.context import CliContext
from forgeline.cli.render import when

app = typer.Typer(help="Stored pipelines and their definition versions.", no_args_is_help=True)


@app.command("list")
def list_pipelines() -> None:
    """List pipelines with their newest version and number of executions."""
    ctx = CliContext()
    pipelines = ctx.store.list_pipelines()
    if not pipelines:
        ctx.console.print("no pipelines yet: start one with `forgeline run <file>`")
        return
    table = Table("pipeline", "latest version", "executions", "created", "updated")
    for p in pipelines:
        table.add_row(p.name, str(p.latest_version), str(p.execution_count), when(p.created_at),
                      when(p.updated_at))
    ctx.console.print(table)


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Pipeline name.")],
    version: Annotated[int | None, typer.Option(help="Version (default: the newest).")] = None,
    definition: Annotated[bool, typer.Option("--definition", help="Print only the definition JSON.")] = False,
) -> None:
    """Show a pipeline's versions and the definition of one of them."""
    ctx = CliContext()
    chosen = ctx.store.get_pipeline_version(name, version)
    if definition:
        sys.stdout.write(json.dumps(chosen.definition, indent=2) + "\n")
        return
    table = Table("version", "digest", "created", title=f"pipeline {name}", title_justify="left")
    for v in ctx.store.list_pipeline_versions(name):
        table.add_row(str(v.version), v.digest[:12], when(v.created_at))
    ctx.console.print(table)
    steps = ", ".join(s["Name"] for s in chosen.definition.get("Steps", []))
    params = ", ".join(f"{p['Name']}:{p['Type']}={p.get('DefaultValue')!r}"
                       for p in chosen.definition.get("Parameters", []))
    ctx.console.print(f"version {chosen.version}: steps {steps}")
    ctx.console.print(f"parameters: {params or 'none'}")
    ctx.console.print("(--definition prints the full JSON)")
