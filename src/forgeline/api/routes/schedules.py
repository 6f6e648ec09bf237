"""/schedules: cron schedules of stored pipelines (admin creates, pauses, resumes, deletes) and their fires."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from forgeline.api.context import Admin, ApiRuntime, ApiStore, Viewer
from forgeline.store.metadata.serialise import serialise
from forgeline.triggers.clocks import system_clock
from forgeline.triggers.definitions import ScheduleSpec, create_schedule, describe_schedule, set_schedule_paused
from forgeline.triggers.starting import pinned_pipeline

router = APIRouter(prefix="/schedules", tags=["schedules"])


class ScheduleBody(BaseModel):
    """A schedule of a stored pipeline: ``forgeline schedules create``'s options as JSON."""

    name: str
    pipeline: str = Field(description="name of a stored pipeline (POST /pipelines stores one)")
    version: int | None = Field(default=None, description="its version; the newest when absent")
    cron: str = Field(description='five fields, e.g. "0 6 * * MON"')
    timezone: str = "UTC"
    parameters: dict[str, Any] = Field(default_factory=dict)
    catchup: str = Field(default="last", description="last or none")
    overlap: str = Field(default="skip", description="skip or allow")
    work_dir: str | None = Field(default=None, description="folder relative data paths resolve against")


@router.get("")
def list_schedules(store: ApiStore, caller: Viewer) -> Any:
    """Every schedule with its next fire, last fire and last execution, by name."""
    return serialise(store.list_schedules())


@router.post("", status_code=201)
def create(body: ScheduleBody, runtime: ApiRuntime, caller: Admin) -> Any:
    """Check and store a schedule; 400 naming a bad cron, time zone or policy, 422 a bad parameter."""
    spec = ScheduleSpec(body.name, body.cron, body.timezone, body.parameters, body.catchup, body.overlap)
    spec.check()
    pipeline = pinned_pipeline(runtime, body.pipeline, body.version, body.parameters, body.work_dir)
    return serialise(create_schedule(runtime.store, spec, pipeline, system_clock()))


@router.get("/{name}")
def describe(name: str, store: ApiStore, caller: Viewer,
             limit: int = Query(20, ge=1, le=10000, description="how many of the latest fires")) -> Any:
    """A schedule and its latest fires, newest first."""
    return serialise(describe_schedule(store, name, limit))


@router.get("/{name}/fires")
def fires(name: str, store: ApiStore, caller: Viewer, limit: int = Query(50, ge=1, le=10000)) -> Any:
    """The schedule's latest fires (due time, outcome, execution or reason), newest first."""
    store.get_schedule(name)
    return serialise(store.list_schedule_fires(name, limit=limit))


@router.post("/{name}/pause")
def pause(name: str, store: ApiStore, caller: Admin) -> Any:
    """Stop firing; due times while paused are not caught up."""
    return serialise(set_schedule_paused(store, name, True, system_clock()))


@router.post("/{name}/resume")
def resume(name: str, store: ApiStore, caller: Admin) -> Any:
    """Fire again from the next due time."""
    return serialise(set_schedule_paused(store, name, False, system_clock()))


@router.delete("/{name}", status_code=204)
def delete(name: str, store: ApiStore, caller: Admin) -> None:
    """Delete a schedule and its fires (executions it started stay)."""
    store.delete_schedule(name)
