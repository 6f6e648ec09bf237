"""``forgeline pipelines list|show``."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.output import JsonOption, fit, make_table, print_json, print_paragraph
from forgeline.cli.remote import parse, parse_list
from forgeline.cli.render import when
from forgeline.store.metadata.records import PipelineSummary, PipelineVersion
from forgeline.store.metadata.serialise import serialise

app = typer.Typer(help="Stored pipelines and their definition versions.", no_args_is_help=True)


@app.command("list")
def list_pipelines(as_json: JsonOption = False) -> None:
    """List pipelines with their newest version and number of executions."""
    ctx = CliContext()
    pipelines = (parse_list(PipelineSummary, ctx.remote.get("/pipelines")) if ctx.remote
                 else ctx.store.list_pipelines())
    if as_json:
        print_json(pipelines)
        return
    if not pipelines:
        ctx.console.print("no pipelines yet: start one with `forgeline run <file>`")
        return
    table = make_table("pipeline", "latest", "executions", "created", "updated", right=("latest", "executions"))
    for p in pipelines:
        table.add_row(Text(p.name), f"v{p.latest_version}", str(p.execution_count), when(p.created_at),
                      when(p.updated_at))
    ctx.console.print(fit(table, ctx.console, "pipeline"))


@app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Pipeline name.")],
    version: Annotated[int | None, typer.Option(help="Version (default: the newest).")] = None,
    definition: Annotated[bool, typer.Option("--definition", help="Print only the definition JSON.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Show a pipeline's versions and the definition of one of them."""
    ctx = CliContext()
    if ctx.remote:
        chosen = parse(PipelineVersion, ctx.remote.get(f"/pipelines/{name}" + (f"/versions/{version}" if version
                                                                              else "")))
        # the API lists versions without their definitions, which this command does not print
        versions = [parse(PipelineVersion, {**v, "definition": {}})
                    for v in ctx.remote.get(f"/pipelines/{name}/versions")]
    else:
        chosen = ctx.store.get_pipeline_version(name, version)
        versions = ctx.store.list_pipeline_versions(name)
    if definition:
        sys.stdout.write(json.dumps(chosen.definition, indent=2) + "\n")
        return
    if as_json:
        print_json({**serialise(chosen), "versions": [
            {key: value for key, value in serialise(v).items() if key != "definition"} for v in versions]})
        return
    table = make_table("version", "digest", "created", right=("version",), title=f"pipeline {name}")
    for v in versions:
        table.add_row(str(v.version), v.digest[:12], when(v.created_at))
    ctx.console.print(table)
    steps = ", ".join(s["Name"] for s in chosen.definition.get("Steps", []))
    params = ", ".join(f"{p['Name']}:{p['Type']}={p.get('DefaultValue')!r}"
                       for p in chosen.definition.get("Parameters", []))
    print_paragraph(ctx.console, f"version {chosen.version}: steps {steps}")
    print_paragraph(ctx.console, f"parameters: {params or 'none'}")
    ctx.console.print("(--definition prints the full JSON)")
