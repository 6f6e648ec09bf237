"""/pipelines: stored pipelines, their definition versions, and storing one from a remote CLI."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from forgeline.api.code_archive import unpack_code
from forgeline.api.context import ApiRuntime, ApiStore, Operator, Viewer, records_json
from forgeline.engine.stored import StoredPipeline
from forgeline.store.metadata.serialise import serialise
from forgeline.store.snapshots import save_snapshot
from forgeline.workflow.pipeline import Pipeline

router = APIRouter(prefix="/pipelines", tags=["pipelines"])


class StoreRequest(BaseModel):
    """A pipeline a CLI loaded from its file: the definition and the code its steps run."""

    definition: dict[str, Any] = Field(description="The pipeline's definition document (JSON).")
    code: str = Field(description="Its code files: a gzipped tar (paths as in the code snapshot), base64.")


@router.post("", status_code=201)
def store_pipeline(body: StoreRequest, runtime: ApiRuntime, caller: Operator) -> Response:
    """Store a definition as the pipeline's newest version (new only when it changed) with a snapshot of its
    code, so executions, schedules and triggers can start it by name; starts nothing."""
    pipeline = Pipeline.from_definition(body.definition)  # a definition that does not load is refused here
    with tempfile.TemporaryDirectory(prefix="forgeline-code-") as folder:
        files = unpack_code(body.code, Path(folder), runtime.settings.max_code_bytes)
        snapshot = save_snapshot(runtime.artifacts, files)
    version = runtime.store.save_pipeline_version(pipeline.name, body.definition, code_snapshot=snapshot)
    return records_json(StoredPipeline(pipeline.name, version.version, snapshot), 201)


@router.get("")
def list_pipelines(store: ApiStore, caller: Viewer) -> Response:
    """Every pipeline with its newest version and execution count, by name."""
    return records_json(store.list_pipelines())


@router.get("/{name}/versions")
def list_versions(name: str, store: ApiStore, caller: Viewer) -> Response:
    """Every stored version of a pipeline, oldest first (without their definitions)."""
    return records_json([{key: value for key, value in serialise(version).items() if key != "definition"}
            for version in store.list_pipeline_versions(name)])


@router.get("/{name}/versions/{version}")
def get_version(name: str, version: int, store: ApiStore, caller: Viewer) -> Response:
    """One version of a pipeline with its definition (JSON)."""
    return records_json(store.get_pipeline_version(name, version))


@router.get("/{name}")
def get_latest(name: str, store: ApiStore, caller: Viewer) -> Response:
    """The newest version of a pipeline with its definition."""
    return records_json(store.get_pipeline_version(name))
