"""create_app: the FastAPI application of a ``forgeline server``, every route under /api/v1, OpenAPI at /docs."""

from __future__ import annotations

from fastapi import FastAPI

from forgeline import __version__
from forgeline.api.auth import Authenticator
from forgeline.api.problems import install_handlers
from forgeline.api.routes import routers
from forgeline.api.ui import mount_ui
from forgeline.engine.runtime import Runtime

API_PREFIX = "/api/v1"


def create_app(runtime: Runtime, auth: Authenticator) -> FastAPI:
    """The API over ``runtime``'s stores; ``auth`` decides who may call what."""
    app = FastAPI(title="forgeline", version=__version__, docs_url="/docs", openapi_url="/openapi.json",
                  description="Pipelines, executions, logs, metrics and the model registry of a forgeline store.")
    app.state.runtime = runtime
    app.state.authenticator = auth
    install_handlers(app)

    @app.get(f"{API_PREFIX}/health", tags=["server"])
    def health() -> dict[str, str]:
        """Whether the server answers (no token needed): for load balancers and scripts waiting for it."""
        return {"status": "ok", "version": __version__}

    for router in routers():
        app.include_router(router, prefix=API_PREFIX)
    mount_ui(app)
    return app
