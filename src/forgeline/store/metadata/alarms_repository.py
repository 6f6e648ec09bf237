"""Repository functions for alarms, their event outbox and deliveries, each in a caller's transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import takewhile
from typing import Any

from sqlalchemy import Connection, Table, delete, func, insert, select, update

from forgeline.errors import AlarmError, AlarmNotFoundError
from forgeline.store.metadata.alarm_store import (
    AlarmDelivery,
    AlarmDraft,
    AlarmEventDraft,
    AlarmEventRecord,
    AlarmRecord,
    DeliveryStatus,
    SourceBatch,
)
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.server_repository import load_cursor, save_cursor
from forgeline.store.metadata.tables import (
    alarm_deliveries,
    alarm_events,
    alarms,
    model_package_events,
    step_events,
)

SOURCES: dict[str, Table] = {"step_events": step_events, "model_package_events": model_package_events}
"""The append-only tables alarm events come from; the cursor following each is ``alarms.<table>``."""


def insert_alarm(connection: Connection, draft: AlarmDraft) -> AlarmRecord:
    """Add an alarm; AlarmError when the name is taken."""
    if connection.execute(select(alarms.c.name).where(alarms.c.name == draft.name)).first() is not None:
        raise AlarmError(f"alarm '{draft.name}' already exists; delete it first with "
                         f"`forgeline alarms delete {draft.name}`")
    now = utc_now()
    connection.execute(insert(alarms).values(
        name=draft.name, events=list(draft.events), targets=list(draft.targets), pipeline_name=draft.pipeline_name,
        group_name=draft.group_name, condition=draft.condition, paused=False, created_at=now, updated_at=now,
    ))
    return load_alarm(connection, draft.name)


def load_alarm(connection: Connection, name: str) -> AlarmRecord:
    """One alarm; AlarmNotFoundError listing the existing ones."""
    row = connection.execute(select(alarms).where(alarms.c.name == name)).first()
    if row is not None:
        return _to_alarm(row)
    names = list(connection.execute(select(alarms.c.name).order_by(alarms.c.name)).scalars())
    known = f"alarms: {', '.join(names)}" if names else "none yet: create one with `forgeline alarms create`"
    raise AlarmNotFoundError(f"no alarm '{name}' ({known})")


def list_alarms(connection: Connection) -> list[AlarmRecord]:
    """Every alarm, by name."""
    return [_to_alarm(row) for row in connection.execute(select(alarms).order_by(alarms.c.name))]


def set_paused(connection: Connection, name: str, paused: bool) -> AlarmRecord:
    """Pause or resume one alarm; pausing drops its pending deliveries (a paused alarm sends nothing, not later)."""
    load_alarm(connection, name)
    connection.execute(update(alarms).where(alarms.c.name == name).values(paused=paused, updated_at=utc_now()))
    if paused:
        drop_pending(connection, name, f"not sent: alarm '{name}' was paused first")
    return load_alarm(connection, name)


def delete_alarm(connection: Connection, name: str) -> None:
    """Remove one alarm; its deliveries stay in the history, its pending ones dropped."""
    load_alarm(connection, name)
    connection.execute(delete(alarms).where(alarms.c.name == name))
    drop_pending(connection, name, f"not sent: alarm '{name}' was deleted first")


def drop_pending(connection: Connection, name: str, reason: str) -> int:
    """Mark the alarm's pending deliveries dropped with ``reason``; how many."""
    return connection.execute(update(alarm_deliveries).where(
        alarm_deliveries.c.alarm_name == name, alarm_deliveries.c.status == DeliveryStatus.PENDING.value,
    ).values(status=DeliveryStatus.DROPPED.value, next_attempt_at=None, last_error=reason)).rowcount


def insert_events(connection: Connection, drafts: list[AlarmEventDraft]) -> list[int]:
    """Append events to the outbox, in order; their ids."""
    now = utc_now()
    return [
        int(connection.execute(insert(alarm_events).values(
            kind=draft.kind, subject=draft.subject, payload=draft.payload, dispatched=False, created_at=now,
        ).returning(alarm_events.c.id)).scalar_one())
        for draft in drafts
    ]


def load_event(connection: Connection, event_id: int) -> AlarmEventRecord:
    """One event of the outbox; AlarmError when there is none."""
    row = connection.execute(select(alarm_events).where(alarm_events.c.id == event_id)).first()
    if row is None:
        raise AlarmError(f"no alarm event {event_id}")
    return _to_event(row)


def read_source(connection: Connection, source: str, limit: int, settle_seconds: float) -> SourceBatch:
    """Rows of the source table after the alarms' cursor on it, oldest first.

    SQLite commits writers one at a time, so ids become visible in order. On other databases a transaction can
    commit after one that took a later id; reading only rows older than ``settle_seconds`` keeps the cursor
    from moving past a row whose transaction has not committed yet.
    """
    table = SOURCES[source]
    after = load_cursor(connection, _cursor_name(source)) or 0
    rows = connection.execute(select(table).where(table.c.id > after).order_by(table.c.id).limit(limit)).all()
    if settle_seconds > 0 and connection.dialect.name != "sqlite":
        settled = utc_now() - timedelta(seconds=settle_seconds)
        rows = list(takewhile(lambda row: row.created_at < settled, rows))
    return SourceBatch(source=source, after=after, rows=[dict(row._mapping) for row in rows])


def import_events(connection: Connection, batch: SourceBatch, drafts: list[AlarmEventDraft]) -> bool:
    """Append the drafts and move the cursor past the batch; False (nothing written) if it moved meanwhile."""
    if (load_cursor(connection, _cursor_name(batch.source)) or 0) != batch.after:
        return False
    insert_events(connection, drafts)
    save_cursor(connection, _cursor_name(batch.source), batch.last)
    return True


def list_undispatched(connection: Connection, limit: int) -> list[AlarmEventRecord]:
    """Events not yet matched to alarms, oldest first."""
    query = (select(alarm_events).where(alarm_events.c.dispatched.is_(False))
             .order_by(alarm_events.c.id).limit(limit))
    return [_to_event(row) for row in connection.execute(query)]


def dispatch_event(connection: Connection, event_id: int, deliveries: list[tuple[str, str]]) -> None:
    """One pending delivery per new (alarm, target) of the event, then mark the event dispatched."""
    existing = {(row.alarm_name, row.target) for row in connection.execute(
        select(alarm_deliveries.c.alarm_name, alarm_deliveries.c.target)
        .where(alarm_deliveries.c.event_id == event_id))}
    # read in this transaction: an alarm paused or deleted since the caller listed the alarms gets nothing
    active = set(connection.execute(select(alarms.c.name).where(alarms.c.paused.is_(False))).scalars())
    now = utc_now()
    for alarm_name, target in dict.fromkeys(deliveries):
        if (alarm_name, target) not in existing and alarm_name in active:
            connection.execute(insert(alarm_deliveries).values(
                alarm_name=alarm_name, event_id=event_id, target=target, status=DeliveryStatus.PENDING.value,
                attempts=0, next_attempt_at=now, created_at=now,
            ))
    connection.execute(update(alarm_events).where(alarm_events.c.id == event_id).values(dispatched=True))


def due_deliveries(connection: Connection, now: datetime, limit: int) -> list[AlarmDelivery]:
    """Pending deliveries due by ``now``, oldest first."""
    query = (_history_query()
             .where(alarm_deliveries.c.status == DeliveryStatus.PENDING.value,
                    alarm_deliveries.c.next_attempt_at <= now)
             .order_by(alarm_deliveries.c.next_attempt_at, alarm_deliveries.c.id).limit(limit))
    return [_to_delivery(row) for row in connection.execute(query)]


def load_delivery(connection: Connection, delivery_id: int) -> AlarmDelivery:
    """One delivery with its event's kind and subject; AlarmError when there is none."""
    row = connection.execute(_history_query().where(alarm_deliveries.c.id == delivery_id)).first()
    if row is None:
        raise AlarmError(f"no alarm delivery {delivery_id}")
    return _to_delivery(row)


def record_attempt(connection: Connection, delivery_id: int, error: str | None,
                   next_attempt_at: datetime | None) -> AlarmDelivery:
    """Count one try of a delivery and store its outcome."""
    now = utc_now()
    current = connection.execute(
        select(alarm_deliveries.c.attempts).where(alarm_deliveries.c.id == delivery_id)).scalar()
    if current is None:
        raise AlarmError(f"no alarm delivery {delivery_id}")
    values: dict[str, Any] = {"attempts": int(current) + 1, "last_error": error}
    if error is None:
        values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now, next_attempt_at=None)
    elif next_attempt_at is None:
        values.update(status=DeliveryStatus.FAILED.value, next_attempt_at=None)
    else:
        values.update(status=DeliveryStatus.PENDING.value, next_attempt_at=next_attempt_at)
    connection.execute(update(alarm_deliveries).where(alarm_deliveries.c.id == delivery_id).values(**values))
    row = connection.execute(_history_query().where(alarm_deliveries.c.id == delivery_id)).one()
    return _to_delivery(row)


def collect_events(connection: Connection, before: datetime, *, dry_run: bool) -> tuple[int, int]:
    """Delete dispatched events older than ``before`` none of whose deliveries is pending, with their deliveries."""
    pending = select(alarm_deliveries.c.event_id).where(alarm_deliveries.c.status == DeliveryStatus.PENDING.value)
    old = (select(alarm_events.c.id).where(alarm_events.c.created_at < before,
                                           alarm_events.c.dispatched.is_(True), alarm_events.c.id.not_in(pending)))
    ids = list(connection.execute(old).scalars())
    deliveries = 0
    for first in range(0, len(ids), 500):  # bounded IN lists
        chunk = ids[first:first + 500]
        counted = select(func.count()).select_from(alarm_deliveries).where(alarm_deliveries.c.event_id.in_(chunk))
        deliveries += int(connection.execute(counted).scalar_one())
        if not dry_run:
            connection.execute(delete(alarm_deliveries).where(alarm_deliveries.c.event_id.in_(chunk)))
            connection.execute(delete(alarm_events).where(alarm_events.c.id.in_(chunk)))
    return len(ids), deliveries


def list_deliveries(connection: Connection, limit: int, alarm_name: str | None) -> list[AlarmDelivery]:
    """The newest deliveries, newest first."""
    query = _history_query()
    if alarm_name is not None:
        query = query.where(alarm_deliveries.c.alarm_name == alarm_name)
    query = query.order_by(alarm_deliveries.c.id.desc()).limit(limit)
    return [_to_delivery(row) for row in connection.execute(query)]


def _history_query() -> Any:
    return select(alarm_deliveries, alarm_events.c.kind.label("event_kind"),
                  alarm_events.c.subject.label("event_subject")).join(
        alarm_events, alarm_events.c.id == alarm_deliveries.c.event_id)


def _to_alarm(row: Any) -> AlarmRecord:
    return AlarmRecord(
        name=row.name, events=list(row.events), targets=list(row.targets), paused=bool(row.paused),
        created_at=row.created_at, updated_at=row.updated_at, pipeline_name=row.pipeline_name,
        group_name=row.group_name, condition=row.condition,
    )


def _to_event(row: Any) -> AlarmEventRecord:
    return AlarmEventRecord(id=row.id, kind=row.kind, subject=row.subject, payload=dict(row.payload),
                            dispatched=bool(row.dispatched), created_at=row.created_at)


def _to_delivery(row: Any) -> AlarmDelivery:
    return AlarmDelivery(
        id=row.id, alarm_name=row.alarm_name, event_id=row.event_id, target=row.target,
        status=DeliveryStatus(row.status), attempts=row.attempts, created_at=row.created_at,
        next_attempt_at=row.next_attempt_at, last_error=row.last_error, delivered_at=row.delivered_at,
        event_kind=row.event_kind, event_subject=row.event_subject,
    )


def _cursor_name(source: str) -> str:
    return f"alarms.{source}"
