"""``forgeline serve``: one process answering HTTP for every endpoint, with worker processes per variant."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Callable
from pathlib import Path

from forgeline.engine.runtime import Runtime
from forgeline.errors import EndpointError
from forgeline.serving.app import ServingApp
from forgeline.serving.capture import DataCapture
from forgeline.serving.manager import EndpointManager, ScalingDefaults
from forgeline.serving.metrics import ServingMetrics


def read_tokens(path: str | Path) -> list[str]:
    """Bearer tokens, one a line (blank lines and ``#`` comments skipped); EndpointError when there are none."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise EndpointError(f"cannot read the token file {path}: {exc.strerror or exc}") from None
    tokens = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not tokens:
        raise EndpointError(f"the token file {path} holds no token: write one token a line")
    return tokens


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (port 0: any free port); EndpointError when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EndpointError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; choose another --port") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def serve(runtime: Runtime, *, host: str = "127.0.0.1", port: int = 8080, scaling: ScalingDefaults | None = None,
          tokens: list[str] | None = None, announce: Callable[[str], None] | None = None) -> None:
    """Serve every endpoint of the metadata store until interrupted."""
    import uvicorn

    if scaling is not None and not 1 <= scaling.min_workers <= scaling.max_workers:
        raise EndpointError(f"--workers-min ({scaling.min_workers}) must be at least 1 and at most --workers-max "
                            f"({scaling.max_workers})")
    store = runtime.store
    manager = EndpointManager(runtime.settings, store, scaling or ScalingDefaults())
    metrics = ServingMetrics(manager.pools)
    app = ServingApp(manager, metrics, DataCapture(runtime.artifacts), tokens or ())
    sock = bind(host, port)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING,
                        format="%(asctime)s forgeline serve %(levelname)s %(message)s")
    config = uvicorn.Config(app, loop=_best("uvloop", "auto"), http=_best("httptools", "auto"), lifespan="on",
                            access_log=False, log_level="warning", timeout_keep_alive=30, backlog=2048,
                            proxy_headers=False, timeout_graceful_shutdown=30)
    bound_host, bound_port = sock.getsockname()[:2]
    url = f"http://{'[' + bound_host + ']' if ':' in bound_host else bound_host}:{bound_port}"
    (announce or print)(f"forgeline serve: listening on {url}")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        store.close()


def _best(module: str, fallback: str) -> str:
    try:
        __import__(module)
    except ImportError:
        return fallback
    return module
