"""``forgeline serve``: host every endpoint over HTTP."""

from __future__ import annotations

from typing import Annotated

import typer

from forgeline.cli.context import CliContext


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port, printed at start).")] = 8080,
    workers_min: Annotated[int, typer.Option("--workers-min", help="Worker processes per variant, at least.")] = 1,
    workers_max: Annotated[int, typer.Option("--workers-max", help="Worker processes per variant, at most.")] = 4,
    worker_idle_seconds: Annotated[float, typer.Option(
        "--worker-idle-seconds", help="Retire a worker above the minimum after this long without requests.")] = 60.0,
    invocation_timeout: Annotated[float, typer.Option(
        "--invocation-timeout", help="Seconds a model may take to answer before the caller gets 504.")] = 60.0,
    token_file: Annotated[str | None, typer.Option(
        "--token-file", help="File of bearer tokens, one a line; requests without one of them get 401.")] = None,
) -> None:
    """Serve every endpoint: POST /endpoints/<name>/invocations, GET /ping, /endpoints, /metrics."""
    from forgeline.engine.runtime import Runtime
    from forgeline.serving.manager import ScalingDefaults
    from forgeline.serving.server import read_tokens
    from forgeline.serving.server import serve as run_server

    ctx = CliContext()
    tokens = read_tokens(token_file) if token_file else None
    scaling = ScalingDefaults(min_workers=workers_min, max_workers=workers_max, idle_seconds=worker_idle_seconds,
                              timeout_seconds=invocation_timeout)

    def announce(line: str) -> None:
        print(line, flush=True)

    run_server(Runtime.build(ctx.settings), host=host, port=port, scaling=scaling, tokens=tokens, announce=announce)
