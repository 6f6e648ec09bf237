"""``forgeline run``: start a pipeline from its file and watch its steps live."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.watch import finish
from forgeline.engine.launch import plan_execution, start_execution
from forgeline.engine.loader import load_pipeline
from forgeline.errors import ForgelineError, ParameterError
from forgeline.workflow.policies import SelectiveExecutionConfig


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    """``Name=Value`` pairs from ``-p`` options (the value may itself contain '=')."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"-p {pair!r}: expected Name=Value")
        overrides[name.strip()] = value
    return overrides


def run(
    pipeline_file: Annotated[str, typer.Argument(help="Pipeline file, optionally file.py:variable.")],
    parameter: Annotated[list[str] | None, typer.Option("-p", "--parameter", help="Name=Value override.")] = None,
    pipeline_name: Annotated[str | None, typer.Option("--pipeline", help="Pipeline name in the file.")] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start and return without watching.")] = False,
    only: Annotated[str | None, typer.Option("--only", help="Run only these steps (comma-separated).")] = None,
    source: Annotated[str | None, typer.Option("--from", help="Execution that provides the other steps' outputs.")]
    = None,
) -> None:
    """Start a pipeline and watch its steps; exit 0 when it succeeds."""
    ctx = CliContext()
    selective = None
    if only or source:
        if not (only and source):
            raise ForgelineError("--only and --from go together: --only Step1,Step2 --from <execution-id>")
        selective = SelectiveExecutionConfig(source, [s.strip() for s in only.split(",") if s.strip()])
    pipeline = load_pipeline(pipeline_file, pipeline_name)
    execution = start_execution(pipeline, parse_overrides(parameter or []), settings=ctx.settings,
                                selective=selective, fork=True)
    finish(execution, ctx, detach)


def plan(
    pipeline_file: Annotated[str, typer.Argument(help="Pipeline file, optionally file.py:variable.")],
    parameter: Annotated[list[str] | None, typer.Option("-p", "--parameter", help="Name=Value override.")] = None,
    pipeline_name: Annotated[str | None, typer.Option("--pipeline", help="Pipeline name in the file.")] = None,
) -> None:
    """Show, before running, which steps would be cache hits and why each miss misses."""
    ctx = CliContext()
    pipeline = load_pipeline(pipeline_file, pipeline_name)
    table = Table("step", "kind", "plan", "why / cached from")
    style = {"HIT": "green", "MISS": "yellow", "SKIP": "dim", "RUN": "cyan"}
    for item in plan_execution(pipeline, parse_overrides(parameter or []), settings=ctx.settings):
        why = f"from execution {item.cache_source}" if item.decision == "HIT" else "; ".join(item.reasons)
        table.add_row(Text(item.name), item.kind, Text(item.decision, style=style.get(item.decision, "")),
                      Text(why))
    ctx.console.print(table)
