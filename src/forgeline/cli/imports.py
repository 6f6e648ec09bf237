"""``forgeline import sagemaker``: bring a SageMaker pipeline definition in as a stored forgeline pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from forgeline.cli.context import CliContext
from forgeline.cli.run import parse_overrides
from forgeline.cli.watch import finish
from forgeline.engine.launch import start_execution, upsert_pipeline
from forgeline.errors import ForgelineError
from forgeline.sagemaker.check import format_reports
from forgeline.sagemaker.importer import check_definition, import_definition
from forgeline.sagemaker.s3 import S3Map

app = typer.Typer(help="Import pipelines written for other platforms.", no_args_is_help=True)


def pairs(values: list[str] | None, option: str, example: str) -> dict[str, str]:
    """``KEY=VALUE`` options as a dict (the key may not be empty; the value may contain '=')."""
    result: dict[str, str] = {}
    for value in values or []:
        key, sep, rest = value.rpartition("=") if option == "--lambda" else value.partition("=")
        if not sep or not key or not rest:
            raise ForgelineError(f"{option} {value!r}: expected {example}")
        result[key] = rest
    return result


@app.command("sagemaker")
def sagemaker(
    definition: Annotated[str, typer.Argument(help="The JSON of a SageMaker pipeline.definition().")],
    code_root: Annotated[str, typer.Option("--code-root", help="Folder of the project's code.")] = ".",
    s3_root: Annotated[list[str] | None, typer.Option(
        "--s3-root", help="s3://bucket/prefix=./folder (URIs under no root: S3 itself, see FORGELINE_STORAGE_OPTIONS)",
    )] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of the forgeline pipeline.")] = None,
    check: Annotated[bool, typer.Option("--check", help="List what maps, step by step; import nothing.")] = False,
    run: Annotated[bool, typer.Option("--run", help="Start an execution after importing.")] = False,
    parameter: Annotated[list[str] | None, typer.Option("-p", "--parameter", help="Name=Value (with --run).")]
    = None,
    lambda_: Annotated[list[str] | None, typer.Option("--lambda", help="arn:...=module:function")] = None,
    image: Annotated[list[str] | None, typer.Option("--image", help="PATTERN=local or PATTERN=requirements.txt")]
    = None,
    output: Annotated[str | None, typer.Option("--output", help="Also write the forgeline definition here.")]
    = None,
    detach: Annotated[bool, typer.Option("--detach", help="With --run: start and return.")] = False,
) -> None:
    """Import a SageMaker pipeline definition (or, with --check, report what would map)."""
    path = Path(definition)
    if not path.is_file():
        raise ForgelineError(f"definition file {definition!r} does not exist")
    document = path.read_text()
    s3_map = pairs(s3_root, "--s3-root", "s3://bucket/prefix=./folder")
    lambdas = pairs(lambda_, "--lambda", "arn:aws:lambda:...=module:function")
    images = pairs(image, "--image", "PATTERN=local or PATTERN=requirements.txt")
    if check:
        reports = check_definition(document, code_root, s3_map, images, lambdas)
        for line in format_reports(reports):
            sys.stdout.write(line + "\n")
        refused = [r for r in reports if not r.maps]
        sys.stdout.write(f"{len(reports) - len(refused)} of {len(reports)} steps map"
                         + (f"; {len(refused)} cannot\n" if refused else "\n"))
        raise typer.Exit(1 if refused else 0)
    ctx = CliContext()
    pipeline = import_definition(document, code_root, s3_map, name, images, lambdas)
    stored = upsert_pipeline(pipeline, ctx.settings)
    ctx.console.print(f"imported pipeline {pipeline.name} version {stored['PipelineVersion']} "
                      f"({len(pipeline.steps)} steps)")
    if output:
        Path(output).write_text(json.dumps(pipeline.to_request(), indent=2) + "\n")
        ctx.console.print(f"definition written to {output} (forgeline run/plan {output})")
    if run:
        mapping = S3Map.of(s3_map)
        overrides = {k: mapping.map(v) for k, v in parse_overrides(parameter or []).items()}
        finish(start_execution(pipeline, overrides, settings=ctx.settings, fork=True,
                               started_by={"kind": "cli"}), ctx, detach)
