"""Repository functions for model package groups, packages and approval events, each in a caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from forgeline.errors import ModelPackageNotFoundError, ModelRegistryError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.records import (
    ModelPackageDraft,
    ModelPackageEvent,
    ModelPackageGroupSummary,
    ModelPackageRecord,
)
from forgeline.store.metadata.tables import model_package_events, model_package_groups, model_packages
from forgeline.workflow.models import ModelApprovalStatus, parse_approval_status

_APPROVED = ModelApprovalStatus.APPROVED.value


def insert_package(connection: Connection, draft: ModelPackageDraft, actor: str) -> ModelPackageRecord:
    """Add the draft as its group's next version (creating the group) and record its first event."""
    status = parse_approval_status(draft.approval_status, ModelRegistryError)
    now = utc_now()
    # FOR UPDATE: on PostgreSQL registrations into one group queue up on its row, so each reads the newest
    # version only after the previous one committed (SQLite's BEGIN IMMEDIATE already serialises writers).
    group_exists = connection.execute(
        select(model_package_groups.c.name).where(model_package_groups.c.name == draft.group).with_for_update()
    ).first()
    if group_exists is None:
        # A concurrent first registration makes this raise IntegrityError; the caller's next round sees the group.
        connection.execute(insert(model_package_groups).values(name=draft.group, created_at=now))
    newest = connection.execute(
        select(func.max(model_packages.c.version)).where(model_packages.c.group_name == draft.group)
    ).scalar()
    version = 1 if newest is None else int(newest) + 1
    connection.execute(
        insert(model_packages).values(
            group_name=draft.group, version=version, approval_status=status.value, model_data=draft.model_data,
            code_uri=draft.code_uri, entry_point=draft.entry_point, content_types=list(draft.content_types),
            response_types=list(draft.response_types), metrics=draft.metrics, description=draft.description,
            lineage=dict(draft.lineage), execution_id=draft.lineage.get("execution_id"),
            accepts_batches=bool(draft.accepts_batches), created_at=now, updated_at=now,
        )
    )
    _insert_event(connection, draft.group, version, None, status, actor, None)
    return load_package(connection, draft.group, version)


def load_package(connection: Connection, group: str, version: int) -> ModelPackageRecord:
    """One version of a group; ModelPackageNotFoundError saying which versions do exist."""
    row = connection.execute(
        select(model_packages).where(model_packages.c.group_name == group, model_packages.c.version == version)
    ).first()
    if row is not None:
        return _to_package(row)
    _require_group(connection, group)
    newest = connection.execute(
        select(func.max(model_packages.c.version)).where(model_packages.c.group_name == group)
    ).scalar()
    raise ModelPackageNotFoundError(
        f"model package group '{group}' has no version {version} (versions 1 to {newest} exist)"
    )


def list_packages(connection: Connection, group: str, status: ModelApprovalStatus | None) -> list[ModelPackageRecord]:
    """The group's packages, newest first, optionally only those with one status."""
    _require_group(connection, group)
    query = select(model_packages).where(model_packages.c.group_name == group)
    if status is not None:
        query = query.where(model_packages.c.approval_status == status.value)
    return [_to_package(row) for row in connection.execute(query.order_by(model_packages.c.version.desc()))]


def list_groups(connection: Connection) -> list[ModelPackageGroupSummary]:
    """Every group with its version count, newest version, newest Approved version and last change, by name."""
    versions = (
        select(
            model_packages.c.group_name,
            func.count().label("version_count"),
            func.max(model_packages.c.version).label("latest_version"),
            func.max(model_packages.c.updated_at).label("updated_at"),
        )
        .group_by(model_packages.c.group_name)
        .subquery()
    )
    approved = (
        select(model_packages.c.group_name, func.max(model_packages.c.version).label("latest_approved_version"))
        .where(model_packages.c.approval_status == _APPROVED)
        .group_by(model_packages.c.group_name)
        .subquery()
    )
    rows = connection.execute(
        select(
            model_package_groups.c.name,
            model_package_groups.c.created_at,
            versions.c.version_count,
            versions.c.latest_version,
            versions.c.updated_at,
            approved.c.latest_approved_version,
        )
        .join(versions, versions.c.group_name == model_package_groups.c.name)
        .outerjoin(approved, approved.c.group_name == model_package_groups.c.name)
        .order_by(model_package_groups.c.name)
    ).all()
    return [
        ModelPackageGroupSummary(
            name=row.name, created_at=row.created_at, updated_at=row.updated_at, version_count=row.version_count,
            latest_version=row.latest_version, latest_approved_version=row.latest_approved_version,
        )
        for row in rows
    ]


def latest_approved(connection: Connection, group: str) -> ModelPackageRecord:
    """The group's Approved package with the highest version; ModelPackageNotFoundError when there is none."""
    row = connection.execute(
        select(model_packages)
        .where(model_packages.c.group_name == group, model_packages.c.approval_status == _APPROVED)
        .order_by(model_packages.c.version.desc())
        .limit(1)
    ).first()
    if row is not None:
        return _to_package(row)
    _require_group(connection, group)
    raise ModelPackageNotFoundError(
        f"model package group '{group}' has no Approved version; approve one with "
        f"`forgeline models approve {group} <version>`"
    )


def update_status(
    connection: Connection, group: str, version: int, status: ModelApprovalStatus | str, actor: str,
    note: str | None,
) -> ModelPackageEvent:
    """Move a package to ``status`` and record the transition; refuse a move to the status it already has."""
    target = parse_approval_status(status, ModelRegistryError)
    current = load_package(connection, group, version)
    if current.approval_status == target:
        raise ModelRegistryError(f"model package {current.arn} is already {target.value}; nothing changed")
    connection.execute(
        update(model_packages)
        .where(model_packages.c.group_name == group, model_packages.c.version == version)
        .values(approval_status=target.value, updated_at=utc_now())
    )
    return _insert_event(connection, group, version, current.approval_status, target, actor, note)


def list_events(
    connection: Connection, group: str | None, version: int | None, to_status: ModelApprovalStatus | None,
    after: int | None, limit: int | None,
) -> list[ModelPackageEvent]:
    """Status transitions, oldest first (the newest ``limit`` of them when a limit is given)."""
    query = select(model_package_events)
    if after is not None:
        query = query.where(model_package_events.c.id > after)
    if group is not None:
        _require_group(connection, group)
        query = query.where(model_package_events.c.group_name == group)
    if version is not None:
        query = query.where(model_package_events.c.version == version)
    if to_status is not None:
        query = query.where(model_package_events.c.to_status == to_status.value)
    query = query.order_by(model_package_events.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    return [_to_event(row) for row in reversed(connection.execute(query).all())]


def _insert_event(
    connection: Connection, group: str, version: int, from_status: ModelApprovalStatus | None,
    to_status: ModelApprovalStatus, actor: str, note: str | None,
) -> ModelPackageEvent:
    created_at = utc_now()
    result = connection.execute(
        insert(model_package_events).values(
            group_name=group, version=version, from_status=None if from_status is None else from_status.value,
            to_status=to_status.value, actor=actor, note=note, created_at=created_at,
        )
    )
    seq = result.inserted_primary_key[0] if result.inserted_primary_key else 0
    return ModelPackageEvent(seq=int(seq), group=group, version=version, from_status=from_status,
                             to_status=to_status, actor=actor, created_at=created_at, note=note)


def _require_group(connection: Connection, group: str) -> None:
    found = connection.execute(
        select(model_package_groups.c.name).where(model_package_groups.c.name == group)
    ).first()
    if found is not None:
        return
    names = list(connection.execute(select(model_package_groups.c.name).order_by(model_package_groups.c.name))
                 .scalars())
    known = f"groups: {', '.join(names)}" if names else "none yet: a RegisterModel step creates one"
    raise ModelPackageNotFoundError(f"no model package group '{group}' ({known})")


def _to_package(row: Any) -> ModelPackageRecord:
    return ModelPackageRecord(
        group=row.group_name, version=row.version, approval_status=ModelApprovalStatus(row.approval_status),
        model_data=row.model_data, created_at=row.created_at, updated_at=row.updated_at, code_uri=row.code_uri,
        entry_point=row.entry_point, content_types=list(row.content_types), response_types=list(row.response_types),
        metrics=row.metrics, description=row.description, lineage=dict(row.lineage),
        accepts_batches=bool(row.accepts_batches),
    )


def _to_event(row: Any) -> ModelPackageEvent:
    return ModelPackageEvent(
        seq=row.id, group=row.group_name, version=row.version,
        from_status=None if row.from_status is None else ModelApprovalStatus(row.from_status),
        to_status=ModelApprovalStatus(row.to_status), actor=row.actor, created_at=row.created_at, note=row.note,
    )
