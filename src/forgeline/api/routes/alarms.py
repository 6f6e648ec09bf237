"""/alarms: alarms (admin creates, pauses, resumes and deletes them) and their delivery history."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from forgeline.alarms.definitions import define_alarm
from forgeline.api.context import Admin, ApiStore, Viewer
from forgeline.store.metadata.serialise import serialise

router = APIRouter(prefix="/alarms", tags=["alarms"])


class AlarmBody(BaseModel):
    """An alarm to create: ``forgeline alarms create``'s options as JSON."""

    name: str
    events: list[str] = Field(description="execution.started, execution.failed, step.failed, model.approved, ...")
    targets: list[str] = Field(description="webhook:URL, email:ADDRESS[,ADDRESS] or command:COMMAND")
    pipeline: str | None = None
    group: str | None = None
    when: str | None = Field(default=None, description="for metric: e.g. steps.Compare.properties.x.y > 0.05")


@router.get("")
def list_alarms(store: ApiStore, caller: Viewer) -> Any:
    """Every alarm, by name."""
    return serialise(store.list_alarms())


@router.post("", status_code=201)
def create_alarm(body: AlarmBody, store: ApiStore, caller: Admin) -> Any:
    """Check and store a new alarm; 400 naming the bad event, target or condition (nothing stored)."""
    draft = define_alarm(body.name, body.events, body.targets, pipeline=body.pipeline, group=body.group,
                         when=body.when)
    return serialise(store.create_alarm(draft))


@router.get("/history")
def history(store: ApiStore, caller: Viewer, limit: int = Query(50, ge=1, le=10000),
            alarm: str | None = None) -> Any:
    """The newest deliveries (of one alarm when given), newest first, with their status and last error."""
    return serialise(store.list_alarm_deliveries(limit, alarm))


@router.get("/{name}")
def get_alarm(name: str, store: ApiStore, caller: Viewer) -> Any:
    """One alarm."""
    return serialise(store.get_alarm(name))


@router.post("/{name}/pause")
def pause_alarm(name: str, store: ApiStore, caller: Admin) -> Any:
    """Stop matching new events."""
    return serialise(store.set_alarm_paused(name, True))


@router.post("/{name}/resume")
def resume_alarm(name: str, store: ApiStore, caller: Admin) -> Any:
    """Match new events again."""
    return serialise(store.set_alarm_paused(name, False))


@router.delete("/{name}")
def delete_alarm(name: str, store: ApiStore, caller: Admin) -> Any:
    """Delete an alarm; its delivery history stays."""
    store.delete_alarm(name)
    return {"deleted": name}
