"""/endpoints: the real-time endpoints' configurations, what their server made of them, and their live traffic
(``live``: asked of the running ``forgeline serve``, see ``api/endpoint_traffic.py``). Read only."""

from __future__ import annotations

from fastapi import APIRouter, Response

from forgeline.api.context import ApiStore, Viewer, records_json
from forgeline.api.endpoint_traffic import with_live
from forgeline.store.metadata.serialise import serialise

router = APIRouter(prefix="/endpoints", tags=["endpoints"])


@router.get("")
def list_endpoints(store: ApiStore, caller: Viewer) -> Response:
    """Every endpoint with its configuration, revision, status and live traffic, by name."""
    return records_json(with_live(serialise(store.list_endpoints())))


@router.get("/{name}")
def get_endpoint(name: str, store: ApiStore, caller: Viewer) -> Response:
    """One endpoint, with its live traffic."""
    return records_json(with_live([serialise(store.get_endpoint(name))])[0])
