"""/models: the model registry — groups, versions, approve/reject with a note (the token's name is the actor),
approval events and metric comparisons, through the same Registry the CLI and Python use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from forgeline.api.context import ApiRuntime, Approver, Viewer, records_json
from forgeline.registry import Registry

router = APIRouter(prefix="/models", tags=["models"])


class Decision(BaseModel):
    """An approval or rejection: why (kept in the approval history)."""

    note: str | None = Field(default=None, description="Why; shown in the history and in notifications.")


@router.get("/groups")
def groups(runtime: ApiRuntime, caller: Viewer) -> Response:
    """Every model package group with its newest and newest approved versions."""
    return records_json(Registry(runtime=runtime).groups())


@router.get("/groups/{group}/versions")
def versions(group: str, runtime: ApiRuntime, caller: Viewer,
             status: Annotated[str | None, Query(description="PendingManualApproval, Approved or Rejected.")]
             = None) -> Response:
    """A group's versions, newest first."""
    return records_json(Registry(runtime=runtime).list(group, status))


@router.get("/groups/{group}/versions/{version}")
def describe(group: str, version: int, runtime: ApiRuntime, caller: Viewer) -> Response:
    """One version (artifacts, code, metrics, lineage) with its approval history."""
    return records_json(Registry(runtime=runtime).describe(group, version))


@router.post("/groups/{group}/versions/{version}/approve")
def approve(group: str, version: int, body: Decision, runtime: ApiRuntime, caller: Approver) -> Response:
    """Approve a version; the event records the token's name as who decided."""
    return records_json(Registry(runtime=runtime).approve(group, version, note=body.note, by=caller.name))


@router.post("/groups/{group}/versions/{version}/reject")
def reject(group: str, version: int, body: Decision, runtime: ApiRuntime, caller: Approver) -> Response:
    """Reject a version; the event records the token's name as who decided."""
    return records_json(Registry(runtime=runtime).reject(group, version, note=body.note, by=caller.name))


@router.get("/groups/{group}/compare")
def compare(group: str, runtime: ApiRuntime, caller: Viewer,
            a: Annotated[int, Query(description="First version.")],
            b: Annotated[int, Query(description="Second version.")]) -> Response:
    """Metrics of two versions side by side, with the difference (second minus first)."""
    return records_json(Registry(runtime=runtime).compare(group, a, b))


@router.get("/events")
def events(runtime: ApiRuntime, caller: Viewer,
           group: Annotated[str | None, Query(description="Only this group.")] = None,
           version: Annotated[int | None, Query(description="Only this version.")] = None,
           status: Annotated[str | None, Query(description="Only moves to this status.")] = None,
           after: Annotated[int | None, Query(description="Only events after this seq.")] = None,
           limit: Annotated[int | None, Query(ge=1, description="At most this many, the newest.")] = None) -> Response:
    """Approval-status transitions (registrations included), oldest first."""
    return records_json(Registry(runtime=runtime).events(group, version=version, to_status=status, after=after,
                                                      limit=limit))
