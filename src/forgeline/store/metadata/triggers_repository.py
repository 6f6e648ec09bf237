"""Repository functions for file triggers and the objects they saw, each in a caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from forgeline.errors import TriggerError, TriggerNotFoundError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.schedule_store import FireOutcome, StoredPipelineRef
from forgeline.store.metadata.tables import alarm_events, trigger_objects, triggers
from forgeline.store.metadata.trigger_store import ObjectOutcome, TriggerDraft, TriggerObject, TriggerRecord

TRIGGER_REJECTED = "trigger.rejected"
"""The alarm event kind a rejected trigger file writes to the alarm outbox."""


def insert_trigger(connection: Connection, draft: TriggerDraft) -> TriggerRecord:
    """Add a trigger; TriggerError when the name is taken."""
    if connection.execute(select(triggers.c.name).where(triggers.c.name == draft.name)).first() is not None:
        raise TriggerError(f"trigger '{draft.name}' already exists; delete it first with "
                           f"`forgeline triggers delete {draft.name}`")
    now = utc_now()
    connection.execute(insert(triggers).values(
        name=draft.name, pipeline_name=draft.pipeline.pipeline_name,
        pipeline_version=draft.pipeline.pipeline_version, pipeline_source=draft.pipeline.pipeline_source,
        code_snapshot=draft.pipeline.code_snapshot, work_dir=draft.pipeline.work_dir, watch=draft.watch,
        pattern=draft.pattern,
        poll_seconds=draft.poll_seconds, parameters=draft.parameters, paused=False, created_at=now,
        updated_at=now,
    ))
    return load_trigger(connection, draft.name)


def load_trigger(connection: Connection, name: str) -> TriggerRecord:
    """One trigger; TriggerNotFoundError listing the existing ones."""
    row = connection.execute(select(triggers).where(triggers.c.name == name)).first()
    if row is not None:
        return _to_record(connection, row)
    names = list(connection.execute(select(triggers.c.name).order_by(triggers.c.name)).scalars())
    known = f"triggers: {', '.join(names)}" if names else "none yet: create one with `forgeline triggers create`"
    raise TriggerNotFoundError(f"no trigger '{name}' ({known})")


def list_triggers(connection: Connection) -> list[TriggerRecord]:
    """Every trigger, by name."""
    return [_to_record(connection, row) for row in connection.execute(select(triggers).order_by(triggers.c.name))]


def set_paused(connection: Connection, name: str, paused: bool) -> TriggerRecord:
    """Pause or resume one trigger."""
    load_trigger(connection, name)
    connection.execute(update(triggers).where(triggers.c.name == name).values(paused=paused, updated_at=utc_now()))
    return load_trigger(connection, name)


def delete_trigger(connection: Connection, name: str) -> None:
    """Remove one trigger and the objects it saw."""
    load_trigger(connection, name)
    connection.execute(delete(trigger_objects).where(trigger_objects.c.trigger_name == name))
    connection.execute(delete(triggers).where(triggers.c.name == name))


def object_versions(connection: Connection, name: str) -> set[tuple[str, str]]:
    """(key, version) of every object the trigger saw."""
    query = select(trigger_objects.c.key, trigger_objects.c.version).where(trigger_objects.c.trigger_name == name)
    return {(row.key, row.version) for row in connection.execute(query)}


def claim_object(connection: Connection, name: str, key: str, version: str, outcome: FireOutcome,
                 reason: str | None) -> TriggerObject | None:
    """Insert an object with ``outcome``; None when the trigger saw it already.

    Two processes racing past the existence check both insert; the unique constraint refuses the second, whose
    transaction then fails with IntegrityError (the caller reports None).
    """
    seen = connection.execute(select(trigger_objects.c.id).where(
        trigger_objects.c.trigger_name == name, trigger_objects.c.key == key,
        trigger_objects.c.version == version)).first()
    if seen is not None:
        return None
    now = utc_now()
    object_id = connection.execute(insert(trigger_objects).values(
        trigger_name=name, key=key, version=version, outcome=FireOutcome(outcome).value, reason=reason,
        seen_at=now,
    ).returning(trigger_objects.c.id)).scalar_one()
    connection.execute(update(triggers).where(triggers.c.name == name).values(last_event_at=now))
    return load_object(connection, int(object_id))


def claim_objects(connection: Connection, name: str, items: Sequence[tuple[str, str]]) -> list[TriggerObject]:
    """Insert every (key, version) the trigger has not seen as pending, in one transaction; the new rows."""
    claimed = []
    for key, version in items:
        row = claim_object(connection, name, key, version, FireOutcome.PENDING, None)
        if row is not None:
            claimed.append(row)
    return claimed


def reject_object(connection: Connection, name: str, key: str, version: str, reason: str,
                  payload: dict[str, Any]) -> bool:
    """Insert a rejected object and its trigger.rejected alarm event; False when the trigger saw it already."""
    if claim_object(connection, name, key, version, FireOutcome.REJECTED, reason) is None:
        return False
    connection.execute(insert(alarm_events).values(
        kind=TRIGGER_REJECTED, subject=name, payload=payload, dispatched=False, created_at=utc_now()))
    return True


def finish_object(connection: Connection, object_id: int, outcome: FireOutcome, execution_id: str | None,
                  reason: str | None) -> None:
    """Record a claimed object's outcome."""
    connection.execute(update(trigger_objects).where(trigger_objects.c.id == object_id).values(
        outcome=FireOutcome(outcome).value, execution_id=execution_id, reason=reason))


def finish_objects(connection: Connection, outcomes: Sequence[ObjectOutcome]) -> None:
    """Record several claimed objects' outcomes."""
    for item in outcomes:
        finish_object(connection, item.object_id, item.outcome, item.execution_id, item.reason)


def old_objects(connection: Connection, name: str, before: datetime) -> list[TriggerObject]:
    """The trigger's objects seen before ``before`` with a final outcome, oldest first."""
    query = select(trigger_objects).where(
        trigger_objects.c.trigger_name == name, trigger_objects.c.seen_at < before,
        trigger_objects.c.outcome != FireOutcome.PENDING.value).order_by(trigger_objects.c.id)
    return [_to_object(row) for row in connection.execute(query)]


def delete_objects(connection: Connection, object_ids: Sequence[int]) -> int:
    """Delete objects by id (never a pending one); how many went."""
    deleted = 0
    for first in range(0, len(object_ids), 500):  # bounded IN lists
        deleted += connection.execute(delete(trigger_objects).where(
            trigger_objects.c.id.in_(list(object_ids[first:first + 500])),
            trigger_objects.c.outcome != FireOutcome.PENDING.value)).rowcount
    return deleted


def load_object(connection: Connection, object_id: int) -> TriggerObject:
    """One object by id."""
    row = connection.execute(select(trigger_objects).where(trigger_objects.c.id == object_id)).one()
    return _to_object(row)


def list_objects(connection: Connection, name: str | None, outcome: FireOutcome | None,
                 limit: int) -> list[TriggerObject]:
    """Objects matching the filters, newest first."""
    query = select(trigger_objects).order_by(trigger_objects.c.id.desc())
    if name is not None:
        query = query.where(trigger_objects.c.trigger_name == name)
    if outcome is not None:
        query = query.where(trigger_objects.c.outcome == FireOutcome(outcome).value)
    return [_to_object(row) for row in connection.execute(query.limit(limit))]


def _to_object(row: Any) -> TriggerObject:
    return TriggerObject(id=row.id, trigger_name=row.trigger_name, key=row.key, version=row.version,
                         outcome=FireOutcome(row.outcome), seen_at=row.seen_at, execution_id=row.execution_id,
                         reason=row.reason)


def _to_record(connection: Connection, row: Any) -> TriggerRecord:
    seen = connection.execute(select(func.count()).select_from(trigger_objects).where(
        trigger_objects.c.trigger_name == row.name)).scalar_one()
    last = connection.execute(select(trigger_objects.c.execution_id).where(
        trigger_objects.c.trigger_name == row.name, trigger_objects.c.execution_id.is_not(None),
    ).order_by(trigger_objects.c.id.desc()).limit(1)).scalar()
    return TriggerRecord(
        name=row.name,
        pipeline=StoredPipelineRef(row.pipeline_name, row.pipeline_version, row.code_snapshot, row.pipeline_source,
                                   row.work_dir),
        watch=row.watch, pattern=row.pattern, poll_seconds=float(row.poll_seconds),
        parameters=dict(row.parameters), paused=bool(row.paused), last_event_at=row.last_event_at,
        created_at=row.created_at, updated_at=row.updated_at, objects_seen=int(seen), last_execution_id=last,
    )
