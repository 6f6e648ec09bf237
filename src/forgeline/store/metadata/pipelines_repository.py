"""Repository functions for pipelines and their versions, each run inside a caller's transaction."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from forgeline.errors import PipelineNotFoundError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.records import PipelineSummary, PipelineVersion
from forgeline.store.metadata.rows import to_pipeline_version
from forgeline.store.metadata.tables import executions, pipeline_versions, pipelines


def save_version(connection: Connection, name: str, definition: dict[str, Any], digest: str,
                 code_snapshot: str | None = None) -> PipelineVersion:
    """Insert the next version unless a stored version has this digest (then return that one).

    So an unchanged definition never makes a new version, even after a change was undone (v1, v2, then v1's
    definition again: v1) or when two loaders of one file alternate. A code_snapshot given is recorded on the
    version returned, replacing the one of its previous save.
    """
    now = utc_now()
    # FOR UPDATE: on PostgreSQL saves of one pipeline queue up on its row, so each reads the newest version
    # only after the previous one committed (SQLite's BEGIN IMMEDIATE already serialises writers).
    pipeline = select(pipelines.c.name).where(pipelines.c.name == name).with_for_update()
    if connection.execute(pipeline).first() is None:
        # A concurrent first save makes this raise IntegrityError; the caller's next round sees the pipeline.
        connection.execute(insert(pipelines).values(name=name, created_at=now))
    same = connection.execute(
        select(pipeline_versions)
        .where(pipeline_versions.c.pipeline_name == name, pipeline_versions.c.digest == digest)
        .order_by(pipeline_versions.c.version.desc())
        .limit(1)
    ).first()
    if same is not None:
        found = to_pipeline_version(same)
        if code_snapshot is None or code_snapshot == found.code_snapshot:
            return found
        connection.execute(update(pipeline_versions).where(pipeline_versions.c.id == same.id)
                           .values(code_snapshot=code_snapshot))
        return replace(found, code_snapshot=code_snapshot)
    newest = connection.execute(
        select(func.max(pipeline_versions.c.version)).where(pipeline_versions.c.pipeline_name == name)
    ).scalar()
    version = 1 if newest is None else newest + 1
    connection.execute(
        insert(pipeline_versions).values(
            pipeline_name=name, version=version, definition=definition, digest=digest, created_at=now,
            code_snapshot=code_snapshot,
        )
    )
    return PipelineVersion(pipeline_name=name, version=version, definition=definition, digest=digest, created_at=now,
                           code_snapshot=code_snapshot)


def load_version(connection: Connection, name: str, version: int | None) -> PipelineVersion:
    """One version (None: the newest); PipelineNotFoundError saying which versions do exist."""
    query = select(pipeline_versions).where(pipeline_versions.c.pipeline_name == name)
    if version is None:
        query = query.order_by(pipeline_versions.c.version.desc()).limit(1)
    else:
        query = query.where(pipeline_versions.c.version == version)
    row = connection.execute(query).first()
    if row is not None:
        return to_pipeline_version(row)
    newest = connection.execute(
        select(func.max(pipeline_versions.c.version)).where(pipeline_versions.c.pipeline_name == name)
    ).scalar()
    if newest is None:
        raise PipelineNotFoundError(f"no pipeline '{name}'; save or run it first")
    raise PipelineNotFoundError(f"pipeline '{name}' has no version {version} (versions 1 to {newest} exist)")


def list_versions(connection: Connection, name: str) -> list[PipelineVersion]:
    """Every version of the pipeline, oldest first; PipelineNotFoundError when there are none."""
    rows = connection.execute(
        select(pipeline_versions).where(pipeline_versions.c.pipeline_name == name).order_by(pipeline_versions.c.version)
    ).all()
    if not rows:
        raise PipelineNotFoundError(f"no pipeline '{name}'; save or run it first")
    return [to_pipeline_version(row) for row in rows]


def list_summaries(connection: Connection) -> list[PipelineSummary]:
    """Every pipeline with its newest version, when that was saved, and its execution count, by name."""
    versions = (
        select(
            pipeline_versions.c.pipeline_name,
            func.max(pipeline_versions.c.version).label("latest_version"),
            # max() keeps the column's type, so the result comes back as an aware UTC datetime.
            func.max(pipeline_versions.c.created_at).label("updated_at"),
        )
        .group_by(pipeline_versions.c.pipeline_name)
        .subquery()
    )
    runs = (
        select(executions.c.pipeline_name, func.count().label("execution_count"))
        .group_by(executions.c.pipeline_name)
        .subquery()
    )
    rows = connection.execute(
        select(
            pipelines.c.name,
            pipelines.c.created_at,
            versions.c.latest_version,
            versions.c.updated_at,
            func.coalesce(runs.c.execution_count, 0).label("execution_count"),
        )
        .join(versions, versions.c.pipeline_name == pipelines.c.name)
        .outerjoin(runs, runs.c.pipeline_name == pipelines.c.name)
        .order_by(pipelines.c.name)
    ).all()
    return [
        PipelineSummary(
            name=row.name,
            latest_version=row.latest_version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            execution_count=row.execution_count,
        )
        for row in rows
    ]
