"""/pipelines: stored pipelines, their definition versions, and storing one from a remote CLI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from forgeline.api.context import ApiStore, Viewer
from forgeline.store.metadata.serialise import serialise

router = APIRouter(prefix="/pipelines", tags=["pipelines"])


@router.get("")
def list_pipelines(store: ApiStore, caller: Viewer) -> Any:
    """Every pipeline with its newest version and execution count, by name."""
    return serialise(store.list_pipelines())


@router.get("/{name}/versions")
def list_versions(name: str, store: ApiStore, caller: Viewer) -> Any:
    """Every stored version of a pipeline, oldest first (without their definitions)."""
    return [{key: value for key, value in serialise(version).items() if key != "definition"}
            for version in store.list_pipeline_versions(name)]


@router.get("/{name}/versions/{version}")
def get_version(name: str, version: int, store: ApiStore, caller: Viewer) -> Any:
    """One version of a pipeline with its definition (JSON)."""
    return serialise(store.get_pipeline_version(name, version))


@router.get("/{name}")
def get_latest(name: str, store: ApiStore, caller: Viewer) -> Any:
    """The newest version of a pipeline with its definition."""
    return serialise(store.get_pipeline_version(name))
