"""``forgeline endpoints``: create, update, list, describe, delete real-time endpoints and read their logs."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from forgeline.cli.context import CliContext
from forgeline.cli.endpoints_loadtest import loadtest
from forgeline.cli.output import JsonOption, print_json
from forgeline.cli.render import when
from forgeline.serving.config import EndpointConfig, check_endpoint_name
from forgeline.serving.endpoint import Endpoint
from forgeline.serving.manager import endpoint_log_path

app = typer.Typer(help="Real-time endpoints: inference pipelines served over HTTP.", no_args_is_help=True)

MODEL = Annotated[list[str] | None, typer.Option(
    "--model", help="group@version, group@approved or group@latest; repeat for the stages of a pipeline.")]
VARIANT = Annotated[list[str] | None, typer.Option(
    "--variant", help="name=group@version:weight (models of a pipeline separated by commas); repeatable.")]
BATCH = Annotated[int | None, typer.Option("--max-batch-size", help="Requests gathered into one predict_fn call.")]
WAIT = Annotated[int | None, typer.Option(
    "--max-batch-wait-us", help="Microseconds a batch may wait for more requests (stages that accept batches).")]
CAPTURE = Annotated[float | None, typer.Option(
    "--capture", help="Share of request/response pairs written to the artifact store, 0 to 1 (e.g. 0.05).")]
NAME = Annotated[str, typer.Argument(help="Endpoint name.")]
STATUS_STYLE = {"InService": "green", "Failed": "red", "Creating": "cyan", "Updating": "cyan"}


@app.command("create")
def create(name: NAME, model: MODEL = None, variant: VARIANT = None, max_batch_size: BATCH = None,
           max_batch_wait_us: WAIT = None, capture: CAPTURE = None) -> None:
    """Create an endpoint; a running `forgeline serve` starts serving it."""
    ctx = CliContext()
    endpoint = Endpoint.create(name, model, variants=variant, max_batch_size=max_batch_size,
                               max_batch_wait_us=max_batch_wait_us, capture=capture, settings=ctx.settings,
                               store=ctx.store)
    ctx.console.print(f"endpoint {name} created: {_summary(endpoint.config)}", highlight=False)


@app.command("update")
def update(name: NAME, model: MODEL = None, variant: VARIANT = None, max_batch_size: BATCH = None,
           max_batch_wait_us: WAIT = None, capture: CAPTURE = None) -> None:
    """Change models, variants, batching or capture; the server swaps without dropping a request."""
    ctx = CliContext()
    endpoint = Endpoint(name, settings=ctx.settings, store=ctx.store)
    record = endpoint.update(model, variants=variant, max_batch_size=max_batch_size,
                             max_batch_wait_us=max_batch_wait_us, capture=capture)
    ctx.console.print(f"endpoint {name} revision {record.revision}: {_summary(endpoint.config)}", highlight=False)


@app.command("list")
def list_endpoints(as_json: JsonOption = False) -> None:
    """Every endpoint with its status and variants."""
    ctx = CliContext()
    if as_json:
        print_json(Endpoint.list(store=ctx.store))
        return
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "STATUS", "REVISION", "VARIANTS", "UPDATED"):
        table.add_column(column)
    for record in Endpoint.list(store=ctx.store):
        table.add_row(record.name, _status(record.status.value), str(record.revision),
                      _summary(EndpointConfig.from_json(record.config)), when(record.updated_at))
    ctx.console.print(table)


@app.command("describe")
def describe(name: NAME, as_json: JsonOption = False) -> None:
    """Configuration, status, and the versions the server serves now."""
    ctx = CliContext()
    record = Endpoint(name, settings=ctx.settings, store=ctx.store).describe()
    if as_json:
        print_json(record)
        return
    config = EndpointConfig.from_json(record.config)
    console = ctx.console
    console.print(Text.assemble(("Endpoint ", "bold"), record.name, "  ", _status(record.status.value),
                                f"  revision {record.revision}"))
    if record.status_message:
        console.print(Text(f"  {record.status_message}", style="red"))
    table = Table(box=None, pad_edge=False)
    for column in ("VARIANT", "WEIGHT", "MODELS", "SERVING"):
        table.add_column(column)
    total = sum(v.weight for v in config.variants) or 1.0
    for variant in config.variants:
        serving = ", ".join(record.deployed.get(variant.name, [])) or "-"
        table.add_row(variant.name, f"{variant.weight:g} ({100 * variant.weight / total:.0f} %)",
                      " → ".join(map(str, variant.models)), serving)
    console.print(table)
    console.print(f"micro-batching: up to {config.max_batch_size} requests, waiting up to "
                  f"{config.max_batch_wait_us} µs (stages registered with accepts_batches)", highlight=False)
    console.print(f"data capture: {config.capture:g} of requests" +
                  (f" to {ctx.settings.artifact_root}/data-capture/{name}" if config.capture else ""),
                  highlight=False)
    console.print(f"log: {endpoint_log_path(ctx.settings, name)}   created {when(record.created_at)}, "
                  f"updated {when(record.updated_at)}", highlight=False)


@app.command("delete")
def delete(name: NAME) -> None:
    """Delete an endpoint; a running server stops its workers."""
    ctx = CliContext()
    Endpoint(name, settings=ctx.settings, store=ctx.store).delete()
    ctx.console.print(f"endpoint {name} deleted", highlight=False)


@app.command("logs")
def logs(name: NAME, follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new lines until interrupted or the endpoint is deleted.")] = False,
         ) -> None:
    """Print the endpoint's log: swaps, workers, and the tracebacks of requests that failed."""
    ctx = CliContext()
    ctx.store.get_endpoint(check_endpoint_name(name))
    path = endpoint_log_path(ctx.settings, name)
    offset = 0
    deleted = False
    while True:
        if path.exists():
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            offset += len(chunk)
            sys.stdout.write(chunk.decode(errors="replace"))
            sys.stdout.flush()
        if deleted:
            print(f"-- endpoint {name} was deleted", flush=True)
            return
        if not follow:
            return
        time.sleep(0.25)
        deleted = not any(record.name == name for record in ctx.store.list_endpoints())


def _summary(config: EndpointConfig) -> str:
    total = sum(v.weight for v in config.variants) or 1.0
    if len(config.variants) == 1:
        return " → ".join(map(str, config.variants[0].models))
    return "; ".join(f"{v.name} {100 * v.weight / total:.0f} % = {' → '.join(map(str, v.models))}"
                     for v in config.variants)


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


app.command("loadtest")(loadtest)
