"""``forgeline run``: start a pipeline from its file and watch its steps live."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.text import Text

from forgeline.cli import remote
from forgeline.cli.context import CliContext
from forgeline.cli.output import JsonOption, fit, make_table, one_line, print_json, print_paragraph
from forgeline.cli.remote import refuse_option
from forgeline.cli.watch import finish
from forgeline.engine.launch import plan_execution, start_execution
from forgeline.engine.loader import load_pipeline
from forgeline.engine.step_worker import step_worker_forked
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
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Reuse no cached step result in this run (its "
                                           "steps still record theirs for later runs; a later retry or resume "
                                           "of it looks the cache up again).")] = False,
    keep_jobs: Annotated[bool, typer.Option("--keep-jobs", help="Keep succeeded steps' job folders (removed by "
                                            "default; FORGELINE_KEEP_JOBS=1 sets it for every run).")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="Record the execution Queued and print its id: a queue "
                                        "launcher (a forgeline server) starts it when there is room.")] = False,
) -> None:
    """Start a pipeline and watch its steps; exit 0 when it succeeds."""
    ctx = CliContext()
    selective = None
    if only or source:
        if not (only and source):
            raise ForgelineError("--only and --from go together: --only Step1,Step2 --from <execution-id>")
        selective = SelectiveExecutionConfig(source, [s.strip() for s in only.split(",") if s.strip()])
    pipeline = load_pipeline(pipeline_file, pipeline_name)
    if ctx.remote:
        refuse_option(selective is not None, "--only/--from", "start the whole pipeline, or run it locally")
        refuse_option(no_cache or keep_jobs, "--no-cache/--keep-jobs", "the server runs with its own settings")
        finish(remote.start_pipeline(ctx.remote, pipeline, parse_overrides(parameter or []), ctx.settings), ctx,
               detach or queue)
        return
    with step_worker_forked(pipeline, ctx.settings, queued=queue):  # the orchestrator adopts it
        execution = start_execution(pipeline, parse_overrides(parameter or []), settings=ctx.settings,
                                    selective=selective, fork=True, cache_lookups=not no_cache,
                                    keep_jobs=True if keep_jobs else None, queued=queue,
                                    started_by={"kind": "cli"})
    finish(execution, ctx, detach or queue)


def plan(
    pipeline_file: Annotated[str, typer.Argument(help="Pipeline file, optionally file.py:variable.")],
    parameter: Annotated[list[str] | None, typer.Option("-p", "--parameter", help="Name=Value override.")] = None,
    pipeline_name: Annotated[str | None, typer.Option("--pipeline", help="Pipeline name in the file.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Show, before running, which steps would be cache hits and why each miss misses."""
    ctx = CliContext()
    pipeline = load_pipeline(pipeline_file, pipeline_name)
    items = plan_execution(pipeline, parse_overrides(parameter or []), settings=ctx.settings)
    if as_json:
        print_json(items)
        return
    table = make_table("step", "kind", "plan", "why / cached from")
    style = {"HIT": "green", "MISS": "yellow", "SKIP": "dim", "RUN": "cyan"}
    whys = [f"from execution {item.cache_source}" if item.decision == "HIT" else "; ".join(item.reasons)
            for item in items]
    for item, why in zip(items, whys):
        table.add_row(Text(item.name), item.kind, Text(item.decision, style=style.get(item.decision, "")),
                      one_line(why))
    ctx.console.print(fit(table, ctx.console, "why / cached from"))
    width = table.columns[-1].max_width
    if width is not None and any(len(why) > width for why in whys):  # the table cut some: print them whole
        ctx.console.print("why:")
        for item, why in zip(items, whys):
            print_paragraph(ctx.console, f"{item.name}: {why}", indent=2)
