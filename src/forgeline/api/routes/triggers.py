"""/triggers: file triggers of stored pipelines (admin creates, pauses, resumes, deletes) and the files they saw."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from forgeline.api.context import Admin, ApiRuntime, ApiStore, Viewer
from forgeline.store.metadata.schedule_store import FireOutcome
from forgeline.store.metadata.serialise import serialise
from forgeline.triggers.definitions import TriggerSpec, create_trigger, describe_trigger
from forgeline.triggers.starting import pinned_pipeline

router = APIRouter(prefix="/triggers", tags=["triggers"])


class TriggerBody(BaseModel):
    """A file trigger of a stored pipeline: ``forgeline triggers create``'s options as JSON."""

    name: str
    pipeline: str = Field(description="name of a stored pipeline (POST /pipelines stores one)")
    version: int | None = Field(default=None, description="its version; the newest when absent")
    watch: str = Field(description="a folder on the server's machine, or s3://bucket/prefix/")
    pattern: str = "*"
    poll_seconds: float = 5.0
    parameters: dict[str, Any] = Field(default_factory=dict)
    work_dir: str | None = Field(default=None, description="folder relative data paths resolve against")


@router.get("")
def list_triggers(store: ApiStore, caller: Viewer) -> Any:
    """Every trigger with what it watches and how many files it saw, by name."""
    return serialise(store.list_triggers())


@router.post("", status_code=201)
def create(body: TriggerBody, runtime: ApiRuntime, caller: Admin) -> Any:
    """Check and store a trigger; 400 naming a bad watch URL, pattern or interval, 422 a bad parameter."""
    spec = TriggerSpec(body.name, body.watch, body.pattern, body.poll_seconds, body.parameters)
    spec.check(runtime.settings.storage_options)
    pipeline = pinned_pipeline(runtime, body.pipeline, body.version, body.parameters, body.work_dir)
    return serialise(create_trigger(runtime.store, spec, pipeline, runtime.settings.storage_options))


@router.get("/{name}")
def describe(name: str, store: ApiStore, caller: Viewer,
             limit: int = Query(20, ge=1, le=10000, description="how many of the latest files")) -> Any:
    """A trigger and the latest files it saw, newest first."""
    return serialise(describe_trigger(store, name, limit))


@router.get("/{name}/objects")
def objects(name: str, store: ApiStore, caller: Viewer, limit: int = Query(50, ge=1, le=10000),
            outcome: FireOutcome | None = None) -> Any:
    """The files the trigger saw (key, version, outcome, execution or reason), newest first."""
    store.get_trigger(name)
    return serialise(store.list_trigger_objects(name, outcome=outcome, limit=limit))


@router.post("/{name}/pause")
def pause(name: str, store: ApiStore, caller: Admin) -> Any:
    """Stop looking; files arriving meanwhile are handled on resume."""
    return serialise(store.set_trigger_paused(name, True))


@router.post("/{name}/resume")
def resume(name: str, store: ApiStore, caller: Admin) -> Any:
    """Look again."""
    return serialise(store.set_trigger_paused(name, False))


@router.delete("/{name}", status_code=204)
def delete(name: str, store: ApiStore, caller: Admin) -> None:
    """Delete a trigger and its record of files (executions it started stay)."""
    store.delete_trigger(name)
