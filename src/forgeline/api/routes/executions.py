"""/executions: list (filters, pages), describe, start with parameters, stop, retry, resume; steps, attempts,
events and metric series."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from forgeline.api.context import ApiRuntime, ApiStore, Operator, Viewer, records_json
from forgeline.engine.liveness import check_orchestrator
from forgeline.engine.recovery import resume_execution, retry_execution, stop_execution
from forgeline.engine.runtime import Runtime
from forgeline.engine.step_records import ran_in, step_metric_points
from forgeline.engine.stored import start_stored
from forgeline.errors import ForgelineError
from forgeline.store.metadata.records import ExecutionRecord, ExecutionStatus, MetricPoint
from forgeline.store.metadata.serialise import serialise
from forgeline.store.snapshots import snapshot_summary

router = APIRouter(prefix="/executions", tags=["executions"])

MAX_PAGE = 1000


class StartRequest(BaseModel):
    """Start a stored pipeline: its name, parameter overrides (checked as `forgeline run` checks them)."""

    pipeline: str = Field(description="A stored pipeline's name.")
    parameters: dict[str, Any] = Field(default_factory=dict, description="Parameter name -> value.")
    version: int | None = Field(default=None, description="The pipeline version (default: the newest).")
    code_snapshot: str | None = Field(default=None, description="The code to run (default: the version's).")
    work_dir: str | None = Field(default=None, description="Where relative data paths resolve, on the server.")


def encode_cursor(record: ExecutionRecord) -> str:
    """The opaque cursor of the page after ``record``."""
    return base64.urlsafe_b64encode(json.dumps([record.created_at.isoformat(), record.id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """(created_at, id) from a cursor; ForgelineError for one this API did not give."""
    try:
        moment, execution_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(moment), str(execution_id)
    except (ValueError, TypeError, binascii.Error):
        raise ForgelineError(f"cursor {cursor!r} is not one this API gave: pass next_cursor from the previous "
                             "page, or leave it out for the first page") from None


def orchestrator_notes(runtime: Runtime, records: Sequence[ExecutionRecord]) -> dict[str, str]:
    """For each unfinished execution whose orchestrator is lost: how long ago."""
    notes = {}
    for record in records:
        if not record.status.is_terminal:
            liveness = check_orchestrator(record, runtime.settings, runtime.store)
            if liveness.lost:
                notes[record.id] = liveness.note
    return notes


def described(runtime: Runtime, record: ExecutionRecord) -> dict[str, Any]:
    """An execution as `forgeline executions describe --json` prints it: the record, steps and attempts."""
    store = runtime.store
    return {**serialise(record), "orchestrator_lost": orchestrator_notes(runtime, [record]).get(record.id),
            "code": snapshot_summary(runtime.artifacts, record.code_snapshot),
            "steps": serialise(store.list_step_runs(record.id)), "attempts": serialise(store.list_attempts(record.id))}


@router.get("")
def list_executions(
    runtime: ApiRuntime,
    caller: Viewer,
    pipeline: Annotated[str | None, Query(description="Only this pipeline.")] = None,
    status: Annotated[list[ExecutionStatus] | None, Query(description="Only these statuses (repeat it).")] = None,
    since: Annotated[datetime | None, Query(description="Only those created at or after (ISO 8601).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Page size.")] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> Response:
    """Executions, newest first (by creation time, then id): a page and the cursor of the next one."""
    records = runtime.store.list_executions(pipeline, limit=limit, statuses=status, since=since,
                                            before=decode_cursor(cursor) if cursor else None)
    notes = orchestrator_notes(runtime, records)
    return records_json({"items": [{**serialise(record), "orchestrator_lost": notes.get(record.id)}
                                   for record in records],
                         "next_cursor": encode_cursor(records[-1]) if len(records) == limit else None})


@router.post("", status_code=201)
def start(body: StartRequest, runtime: ApiRuntime, caller: Operator) -> Response:
    """Start an execution of a stored pipeline; it is Queued until the server's launcher has room."""
    execution_id = start_stored(runtime, body.pipeline, body.parameters, version=body.version,
                                code_snapshot=body.code_snapshot, work_dir=body.work_dir, queued=True,
                                started_by={"kind": "api", "name": caller.name})
    return records_json(runtime.store.get_execution(execution_id), 201)


@router.get("/{execution_id}")
def describe(execution_id: str, runtime: ApiRuntime, caller: Viewer) -> Response:
    """An execution with its parameters, steps, attempts, times and whole failure reasons."""
    return records_json(described(runtime, runtime.store.get_execution(execution_id)))


@router.post("/{execution_id}/stop")
def stop(execution_id: str, runtime: ApiRuntime, caller: Operator) -> Response:
    """Stop an execution: running jobs are ended and no new step starts (a Queued one never starts; one whose
    orchestrator is lost ends Stopped at once)."""
    return records_json(stop_execution(execution_id, runtime))


@router.post("/{execution_id}/retry")
def retry(execution_id: str, runtime: ApiRuntime, caller: Operator) -> Response:
    """Rerun only the failed, stopped and not-yet-run steps of a finished execution."""
    return records_json(retry_execution(execution_id, runtime, fork=False).record())


@router.post("/{execution_id}/resume")
def resume(execution_id: str, runtime: ApiRuntime, caller: Operator) -> Response:
    """Continue an execution whose orchestrator died (steps that had succeeded are not re-run)."""
    return records_json(resume_execution(execution_id, runtime, fork=False).record())


@router.get("/{execution_id}/steps")
def steps(execution_id: str, store: ApiStore, caller: Viewer) -> Response:
    """The execution's steps in order."""
    return records_json(store.list_step_runs(store.get_execution(execution_id).id))


@router.get("/{execution_id}/steps/{step}")
def step(execution_id: str, step: str, store: ApiStore, caller: Viewer) -> Response:
    """One step: status, times, outputs, properties, cache source."""
    return records_json(store.get_step_run(store.get_execution(execution_id).id, step))


@router.get("/{execution_id}/attempts")
def attempts(execution_id: str, store: ApiStore, caller: Viewer,
             step: Annotated[str | None, Query(description="Only this step's.")] = None) -> Response:
    """Attempts of the execution (or one step), in the order they started."""
    record = store.get_execution(execution_id)
    if step is not None:
        store.get_step_run(record.id, step)  # an unknown step is a 404, not an empty list
    return records_json(store.list_attempts(record.id, step))


@router.get("/{execution_id}/events")
def events(execution_id: str, store: ApiStore, caller: Viewer,
           after: Annotated[int | None, Query(description="Only events after this cursor.")] = None,
           limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE) -> Response:
    """The execution's step events after a cursor, oldest first (for live views)."""
    return records_json(store.events(store.get_execution(execution_id).id, after=after, limit=limit))


@router.get("/{execution_id}/metrics")
def metrics(execution_id: str, store: ApiStore, caller: Viewer,
            step: Annotated[str | None, Query(description="Only this step's.")] = None,
            name: Annotated[str | None, Query(description="Only this metric.")] = None) -> Response:
    """Metric series parsed from training logs, in the order printed; a cache hit's come from its source.

    Each point says which execution ran it (``execution_id``): another one's for a cache hit.
    """
    record = store.get_execution(execution_id)
    runs = [store.get_step_run(record.id, step)] if step else store.list_step_runs(record.id)
    points: list[MetricPoint] = []
    for run in runs:
        source = ran_in(store, run)
        points.extend(p for p in step_metric_points(store, source.execution_id, source) if name in (None, p.name))
    return records_json(points)
