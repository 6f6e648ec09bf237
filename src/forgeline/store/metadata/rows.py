"""Turn database rows into the frozen records the store returns, and field values into column values.

A row is anything with its table's columns as attributes, decoded to Python values (JSON as objects, times as
aware UTC datetimes): a SQLAlchemy Row, or the executions list read with the standard library's sqlite3.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

from forgeline.store.metadata.execution_record import require_aware
from forgeline.store.metadata.records import (
    CacheEntry,
    ContentIndexEntry,
    ExecutionStatus,
    MetricPoint,
    PipelineVersion,
    StepAttempt,
    StepEvent,
    StepEventKind,
    StepRun,
    StepStatus,
)
from forgeline.store.metadata.updates import ExecutionUpdate, StepRunUpdate

if TYPE_CHECKING:  # only a type here: the sqlite3 reader of executions converts its rows without SQLAlchemy
    from sqlalchemy import Row


def execution_values(update: ExecutionUpdate) -> dict[str, Any]:
    """Column values for an execution update; ValueError for a naive datetime or an unknown status."""
    values = update.changes()
    _require_aware_fields(values)
    if "status" in values:
        values["status"] = ExecutionStatus(values["status"]).value
    return values


def step_run_values(update: StepRunUpdate) -> dict[str, Any]:
    """Column values for a step run update; ValueError for a naive datetime or an unknown status."""
    values = update.changes()
    _require_aware_fields(values)
    if "status" in values:
        values["status"] = StepStatus(values["status"]).value
    for column in ("outputs", "properties", "metrics"):
        if column in values and values[column] is None:
            values[column] = {}
    if "cache_hit" in values:
        values["cache_hit"] = bool(values["cache_hit"])
    return values


def enum_value(value: str | Enum | None) -> str | None:
    """The stored string of a str-or-enum value (str() of a str Enum would give 'Class.MEMBER')."""
    if isinstance(value, Enum):
        return str(value.value)
    return value


def to_pipeline_version(row: Row[Any]) -> PipelineVersion:
    """A pipeline_versions row as a PipelineVersion."""
    return PipelineVersion(
        pipeline_name=row.pipeline_name,
        version=row.version,
        definition=row.definition,
        digest=row.digest,
        created_at=row.created_at,
        code_snapshot=row.code_snapshot,
    )


def to_step_run(row: Row[Any]) -> StepRun:
    """A step_runs row as a StepRun."""
    return StepRun(
        execution_id=row.execution_id,
        name=row.name,
        kind=row.kind,
        status=StepStatus(row.status),
        started_at=row.started_at,
        ended_at=row.ended_at,
        attempts=row.attempts,
        failure_reason=row.failure_reason,
        outputs=row.outputs,
        properties=row.properties,
        cache_hit=bool(row.cache_hit),
        cache_source=row.cache_source,
        metrics=row.metrics,
    )


def to_step_attempt(row: Row[Any]) -> StepAttempt:
    """A step_attempts row as a StepAttempt."""
    return StepAttempt(
        execution_id=row.execution_id,
        step_name=row.step_name,
        attempt=row.attempt,
        status=StepStatus(row.status),
        started_at=row.started_at,
        ended_at=row.ended_at,
        failure_kind=row.failure_kind,
        failure_reason=row.failure_reason,
        log_path=row.log_path,
    )


def to_step_event(row: Row[Any]) -> StepEvent:
    """A step_events row as a StepEvent."""
    return StepEvent(
        id=row.id,
        execution_id=row.execution_id,
        kind=StepEventKind(row.kind),
        step_name=row.step_name,
        attempt=row.attempt,
        status=row.status,
        payload=row.payload,
        created_at=row.created_at,
    )


def cache_entry_values(entry: CacheEntry) -> dict[str, Any]:
    """Column values for a new cache_entries row; ValueError for a naive created_at."""
    require_aware("created_at", entry.created_at)
    return {
        "cache_key": entry.cache_key,
        "pipeline_name": entry.pipeline_name,
        "step_name": entry.step_name,
        "step_kind": entry.step_kind,
        "execution_id": entry.execution_id,
        "components": dict(entry.components),
        "outputs": dict(entry.outputs),
        "properties": dict(entry.properties),
        "created_at": entry.created_at,
    }


def to_cache_entry(row: Row[Any]) -> CacheEntry:
    """A cache_entries row as a CacheEntry."""
    return CacheEntry(
        cache_key=row.cache_key,
        pipeline_name=row.pipeline_name,
        step_name=row.step_name,
        step_kind=row.step_kind,
        execution_id=row.execution_id,
        components=row.components,
        outputs=row.outputs,
        properties=row.properties,
        created_at=row.created_at,
    )


def to_content_index_entry(row: Row[Any]) -> ContentIndexEntry:
    """A content_index row as a ContentIndexEntry."""
    return ContentIndexEntry(path=row.path, size=row.size, version=row.version, digest=row.digest)


def metric_point_values(point: MetricPoint) -> dict[str, Any]:
    """Column values for a new metric_points row (NaN stored as NULL); ValueError for a naive timestamp."""
    require_aware("timestamp", point.timestamp)
    value = float(point.value)
    return {
        "execution_id": point.execution_id,
        "step_name": point.step_name,
        "attempt": point.attempt,
        "name": point.name,
        "value": None if math.isnan(value) else value,
        "timestamp": point.timestamp,
        "seq": point.seq,
    }


def to_metric_point(row: Row[Any]) -> MetricPoint:
    """A metric_points row as a MetricPoint (NULL read back as NaN)."""
    return MetricPoint(
        execution_id=row.execution_id,
        step_name=row.step_name,
        attempt=row.attempt,
        name=row.name,
        value=math.nan if row.value is None else float(row.value),
        timestamp=row.timestamp,
        seq=row.seq,
    )


def _require_aware_fields(values: dict[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, datetime):
            require_aware(name, value)
