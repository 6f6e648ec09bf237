"""Repository functions for deleting executions and finding which stored locations are still referenced."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, select

from forgeline.errors import ExecutionNotFoundError, StoreError
from forgeline.store.metadata.execution_record import require_aware, to_execution
from forgeline.store.metadata.housekeeping_store import ArtifactReference, ReferenceHolder, SnapshotReference
from forgeline.store.metadata.records import CacheEntry, ExecutionRecord, ExecutionStatus
from forgeline.store.metadata.rows import to_cache_entry
from forgeline.store.metadata.tables import (
    cache_entries,
    executions,
    model_packages,
    pipeline_versions,
    schedules,
    step_runs,
    triggers,
)

_FINISHED = [status.value for status in ExecutionStatus if status.is_terminal]


def list_finished_executions(connection: Connection, ended_before: datetime) -> list[ExecutionRecord]:
    """Finished executions that ended before ``ended_before``, oldest first."""
    require_aware("ended_before", ended_before)
    rows = connection.execute(
        select(executions)
        .where(executions.c.status.in_(_FINISHED), executions.c.ended_at < ended_before)
        .order_by(executions.c.ended_at, executions.c.id)
    )
    return [to_execution(row) for row in rows]


def list_execution_ids(connection: Connection) -> set[str]:
    """Every execution id."""
    return {str(row[0]) for row in connection.execute(select(executions.c.id))}


def delete_finished_execution(connection: Connection, execution_id: str) -> None:
    """Delete one finished execution (steps, attempts and metric points go with it by cascade)."""
    row = connection.execute(select(executions.c.status).where(executions.c.id == execution_id)).first()
    if row is None:
        raise ExecutionNotFoundError(f"no execution '{execution_id}'")
    if row[0] not in _FINISHED:
        raise StoreError(f"execution {execution_id} is {row[0]}: only a finished execution can be deleted; "
                         f"stop it first (forgeline executions stop {execution_id})")
    connection.execute(delete(executions).where(executions.c.id == execution_id))


def list_cache_entries_of(connection: Connection, execution_id: str) -> list[CacheEntry]:
    """The cache entries one execution produced, oldest first."""
    rows = connection.execute(
        select(cache_entries).where(cache_entries.c.execution_id == execution_id).order_by(cache_entries.c.id)
    )
    return [to_cache_entry(row) for row in rows]


def delete_cache_entry(connection: Connection, execution_id: str, cache_key: str) -> int:
    """Delete the entries with this key produced by this execution; how many went."""
    return connection.execute(
        delete(cache_entries).where(cache_entries.c.execution_id == execution_id,
                                    cache_entries.c.cache_key == cache_key)
    ).rowcount


def list_artifact_references(connection: Connection) -> list[ArtifactReference]:
    """Every location named in step runs' and cache entries' outputs and properties, and by model packages."""
    found: list[ArtifactReference] = []
    for execution_id, name, outputs, properties in connection.execute(
        select(step_runs.c.execution_id, step_runs.c.name, step_runs.c.outputs, step_runs.c.properties)
    ):
        found.extend(ArtifactReference(location, ReferenceHolder.STEP_RUN, execution_id, name)
                     for location in locations_in([outputs, properties]))
    for execution_id, key, outputs, properties in connection.execute(
        select(cache_entries.c.execution_id, cache_entries.c.cache_key, cache_entries.c.outputs,
               cache_entries.c.properties)
    ):
        found.extend(ArtifactReference(location, ReferenceHolder.CACHE_ENTRY, execution_id, key)
                     for location in locations_in([outputs, properties]))
    for group, version, model_data, code_uri in connection.execute(
        select(model_packages.c.group_name, model_packages.c.version, model_packages.c.model_data,
               model_packages.c.code_uri)
    ):
        found.extend(ArtifactReference(location, ReferenceHolder.MODEL_PACKAGE, None, f"{group}/{version}")
                     for location in (model_data, code_uri) if location)
    return found


def list_snapshot_references(connection: Connection) -> list[SnapshotReference]:
    """Every code snapshot named by an execution, a pipeline version, a schedule or a trigger."""
    found = [SnapshotReference(snapshot, f"execution {execution_id}", execution_id, status not in _FINISHED)
             for execution_id, snapshot, status in connection.execute(
                 select(executions.c.id, executions.c.code_snapshot, executions.c.status)
                 .where(executions.c.code_snapshot.is_not(None)))]
    found += [SnapshotReference(snapshot, f"pipeline {name} v{version}")
              for name, version, snapshot in connection.execute(
                  select(pipeline_versions.c.pipeline_name, pipeline_versions.c.version,
                         pipeline_versions.c.code_snapshot).where(pipeline_versions.c.code_snapshot.is_not(None)))]
    for kind, table in (("schedule", schedules), ("trigger", triggers)):
        found += [SnapshotReference(snapshot, f"{kind} {name}") for name, snapshot in connection.execute(
            select(table.c.name, table.c.code_snapshot).where(table.c.code_snapshot.is_not(None)))]
    return found


def locations_in(value: Any) -> Iterator[str]:
    """Every string in a JSON value that looks like a location: an absolute path or a URI."""
    if isinstance(value, str):
        if value.startswith("/") or "://" in value:
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from locations_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from locations_in(item)
