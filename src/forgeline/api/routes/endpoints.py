"""/endpoints: the real-time endpoints' configurations and what their server made of them (read only)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from forgeline.api.context import ApiStore, Viewer, records_json

router = APIRouter(prefix="/endpoints", tags=["endpoints"])


@router.get("")
def list_endpoints(store: ApiStore, caller: Viewer) -> Response:
    """Every endpoint with its configuration, revision and status, by name."""
    return records_json(store.list_endpoints())


@router.get("/{name}")
def get_endpoint(name: str, store: ApiStore, caller: Viewer) -> Response:
    """One endpoint."""
    return records_json(store.get_endpoint(name))
