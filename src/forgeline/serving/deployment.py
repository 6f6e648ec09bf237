"""Deploying registered packages to an endpoint: create or update, wait until the server serves them, try once.

On any failure the endpoint's previous configuration is put back (a new endpoint is removed again), so what the
server served before goes on serving.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from forgeline.errors import DeploymentError, EndpointError, EndpointNotFoundError, ForgelineError
from forgeline.serving.config import ModelRef
from forgeline.serving.endpoint import Endpoint
from forgeline.store.metadata.protocol import MetadataStore

POLL_SECONDS = 0.2


def model_reference(model: str) -> str:
    """``group@7`` for a package id ``group/7``; ``group@7``, ``group@approved`` as they are."""
    return str(ModelRef.parse(str(model)))


@dataclass(frozen=True)
class DeploymentRequest:
    """What to deploy where, and how to confirm it went live."""

    endpoint: str
    models: Sequence[str]
    wait: bool = True
    sample_body: str | None = None
    content_type: str = "application/json"
    timeout: float = 300.0


@dataclass(frozen=True)
class Deployment:
    """A deployment that went live: the endpoint's new revision and the models it serves."""

    endpoint: str
    revision: int
    models: list[str]
    previous_revision: int | None


def _listing(url: str, token: str | None) -> list[dict[str, Any]]:
    request = urllib.request.Request(f"{url}/endpoints",
                                     headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        rows = json.loads(response.read())
    return rows if isinstance(rows, list) else []


def wait_live(endpoint: Endpoint, revision: int, deadline: float,
              clock: Callable[[], float] = time.monotonic) -> None:
    """Poll the server's GET /endpoints until it serves ``revision``; DeploymentError when it cannot or time is up."""
    reached, row = False, None
    while clock() < deadline:
        try:
            rows = _listing(endpoint.url, endpoint.token)
            reached = True
        except (OSError, ValueError):
            rows = []
        row = next((r for r in rows if r.get("name") == endpoint.name), None)
        if row is not None and row.get("serving_revision") == revision and row.get("status") == "InService":
            return
        current = endpoint.describe()
        if current.revision == revision and current.status.value == "Failed":
            raise DeploymentError(f"the server could not serve revision {revision} of endpoint {endpoint.name}: "
                                  f"{current.status_message or (row or {}).get('problem') or 'no reason given'}")
        time.sleep(POLL_SECONDS)
    if not reached:
        raise DeploymentError(f"no forgeline serve answered at {endpoint.url} within the timeout: start one "
                              f"(`forgeline serve`) or set FORGELINE_SERVE_URL, then run the step again")
    serving = None if row is None else row.get("serving_revision")
    raise DeploymentError(f"the server at {endpoint.url} did not serve revision {revision} of endpoint "
                          f"{endpoint.name} within the timeout (it serves revision {serving})")


def deploy(request: DeploymentRequest, store: MetadataStore, url: str | None = None,
           log: Callable[[str], None] = print) -> Deployment:
    """Create or update the endpoint, confirm it is live as asked; restore the previous config on any failure."""
    models = [model_reference(m) for m in request.models]
    started = time.monotonic()
    endpoint = Endpoint(request.endpoint, store=store, url=url)
    try:
        previous = store.get_endpoint(request.endpoint)
    except EndpointNotFoundError:
        previous = None
    try:
        record = endpoint.update(models) if previous is not None else Endpoint.create(
            request.endpoint, models, store=store).describe()
    except EndpointError as exc:
        raise DeploymentError(f"endpoint {request.endpoint} was left as it was: {exc}") from None
    log(f"endpoint {request.endpoint}: revision {record.revision} serves {', '.join(models)}"
        + ("" if previous is None else f" (was revision {previous.revision})"))
    try:
        if request.wait:
            wait_live(endpoint, record.revision, started + request.timeout)
            log(f"the server at {endpoint.url} serves revision {record.revision}")
            if request.sample_body is not None:
                answer = endpoint.invoke(request.sample_body, request.content_type,
                                         timeout=max(1.0, started + request.timeout - time.monotonic()))
                log(f"sample invocation answered by {answer.model} ({answer.variant}): {answer.body[:200]!r}")
    except (ForgelineError, OSError) as exc:
        restored = _restore(store, request.endpoint, previous)
        raise DeploymentError(f"{exc}; {restored}") from None
    return Deployment(request.endpoint, record.revision, models, None if previous is None else previous.revision)


def _restore(store: MetadataStore, name: str, previous: Any) -> str:
    if previous is None:
        store.delete_endpoint(name)
        return f"endpoint {name} was removed again"
    restored = store.update_endpoint(name, previous.config)
    models = [m for v in previous.config.get("variants", []) for m in v.get("models", [])]
    return (f"endpoint {name} is back to its previous configuration (revision {restored.revision}, "
            f"{', '.join(models)})")
