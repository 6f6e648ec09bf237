"""/endpoints: the real-time endpoints' configurations and what their server made of them (read only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from forgeline.api.context import ApiStore, Viewer
from forgeline.store.metadata.serialise import serialise

router = APIRouter(prefix="/endpoints", tags=["endpoints"])


@router.get("")
def list_endpoints(store: ApiStore, caller: Viewer) -> Any:
    """Every endpoint with its configuration, revision and status, by name."""
    return serialise(store.list_endpoints())


@router.get("/{name}")
def get_endpoint(name: str, store: ApiStore, caller: Viewer) -> Any:
    """One endpoint."""
    return serialise(store.get_endpoint(name))
