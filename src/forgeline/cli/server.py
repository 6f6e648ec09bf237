"""``forgeline server``: the REST API with the queue launcher, schedules, triggers and alarms in one process."""

from __future__ import annotations

from typing import Annotated

import typer

from forgeline.api.auth import check_no_auth_host
from forgeline.api.server import ServerOptions, serve_api
from forgeline.cli.context import CliContext
from forgeline.engine.runtime import Runtime


def server(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8080,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="Accept calls without a token (loopback hosts "
                                          "only).")] = False,
) -> None:
    """Serve the API (OpenAPI at /docs) and run queued executions, schedules, triggers and alarms."""
    if no_auth:
        check_no_auth_host(host)  # refused before anything is opened
    ctx = CliContext()
    runtime = Runtime.build(ctx.settings, create=True)
    ctx.console.print(f"forgeline server on http://{host}:{port} (API under /api/v1, docs at /docs), store "
                      f"{ctx.settings.home}" + (", no authentication" if no_auth else ""), highlight=False)
    serve_api(runtime, ServerOptions(host=host, port=port, no_auth=no_auth))
