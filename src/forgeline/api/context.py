"""What a route handler is given: the server's Runtime, and the caller checked for a role."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Response

from forgeline.api.auth import Principal, require_role
from forgeline.engine.runtime import Runtime
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.serialise import dumps
from forgeline.store.metadata.tokens_store import Role


def runtime_of(request: Request) -> Runtime:
    """The Runtime the app was created with."""
    runtime: Runtime = request.app.state.runtime
    return runtime


def store_of(request: Request) -> MetadataStore:
    """The metadata store of the app's Runtime."""
    return runtime_of(request).store


ApiRuntime = Annotated[Runtime, Depends(runtime_of)]
ApiStore = Annotated[MetadataStore, Depends(store_of)]
Viewer = Annotated[Principal, Depends(require_role(Role.VIEWER))]
Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
Approver = Annotated[Principal, Depends(require_role(Role.APPROVER))]
Admin = Annotated[Principal, Depends(require_role(Role.ADMIN))]


def records_json(value: Any, status_code: int = 200) -> Response:
    """A JSON answer in the records' one JSON form (store/metadata/serialise.py), written directly.

    Returning it skips FastAPI's generic encoder, which costs ten times the serialisation itself on a page of
    executions.
    """
    return Response(dumps(value, indent=None), status_code=status_code, media_type="application/json")
