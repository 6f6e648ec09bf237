"""Repository functions for schedules and their fires, each in a caller's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from forgeline.errors import ScheduleError, ScheduleNotFoundError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.schedule_store import (
    CatchupPolicy,
    FireOutcome,
    OverlapPolicy,
    ScheduleDraft,
    ScheduleFire,
    ScheduleRecord,
    StoredPipelineRef,
)
from forgeline.store.metadata.tables import schedule_fires, schedules


def insert_schedule(connection: Connection, draft: ScheduleDraft) -> ScheduleRecord:
    """Add a schedule; ScheduleError when the name is taken."""
    if connection.execute(select(schedules.c.name).where(schedules.c.name == draft.name)).first() is not None:
        raise ScheduleError(f"schedule '{draft.name}' already exists; delete it first with "
                            f"`forgeline schedules delete {draft.name}`")
    now = utc_now()
    connection.execute(insert(schedules).values(
        name=draft.name, pipeline_name=draft.pipeline.pipeline_name,
        pipeline_version=draft.pipeline.pipeline_version, pipeline_source=draft.pipeline.pipeline_source,
        code_snapshot=draft.pipeline.code_snapshot, work_dir=draft.pipeline.work_dir, cron=draft.cron,
        timezone=draft.timezone,
        parameters=draft.parameters, catchup=CatchupPolicy(draft.catchup).value,
        overlap=OverlapPolicy(draft.overlap).value, paused=False, next_fire_at=draft.next_fire_at,
        created_at=now, updated_at=now,
    ))
    return load_schedule(connection, draft.name)


def load_schedule(connection: Connection, name: str) -> ScheduleRecord:
    """One schedule with its last fire; ScheduleNotFoundError listing the existing ones."""
    row = connection.execute(select(schedules).where(schedules.c.name == name)).first()
    if row is not None:
        return _to_record(row, _last_fire(connection, name))
    names = list(connection.execute(select(schedules.c.name).order_by(schedules.c.name)).scalars())
    known = f"schedules: {', '.join(names)}" if names else "none yet: create one with `forgeline schedules create`"
    raise ScheduleNotFoundError(f"no schedule '{name}' ({known})")


def list_schedules(connection: Connection) -> list[ScheduleRecord]:
    """Every schedule with its last fire, by name."""
    return [_to_record(row, _last_fire(connection, row.name))
            for row in connection.execute(select(schedules).order_by(schedules.c.name))]


def set_paused(connection: Connection, name: str, paused: bool, next_fire_at: datetime | None) -> ScheduleRecord:
    """Pause or resume one schedule and set its next due time."""
    load_schedule(connection, name)
    connection.execute(update(schedules).where(schedules.c.name == name).values(
        paused=paused, next_fire_at=next_fire_at, updated_at=utc_now()))
    return load_schedule(connection, name)


def delete_schedule(connection: Connection, name: str) -> None:
    """Remove one schedule and its fires."""
    load_schedule(connection, name)
    connection.execute(delete(schedule_fires).where(schedule_fires.c.schedule_name == name))
    connection.execute(delete(schedules).where(schedules.c.name == name))


def claim_fire(connection: Connection, name: str, due_at: datetime, next_fire_at: datetime) -> bool:
    """Insert the fire (pending) and move the schedule on; False when the due time had fired already.

    Two processes racing past the existence check both insert; the primary key refuses the second, whose
    transaction then fails with IntegrityError (the caller reports False).
    """
    exists = connection.execute(select(schedule_fires.c.due_at).where(
        schedule_fires.c.schedule_name == name, schedule_fires.c.due_at == due_at)).first()
    if exists is not None:
        return False
    connection.execute(insert(schedule_fires).values(
        schedule_name=name, due_at=due_at, outcome=FireOutcome.PENDING.value, created_at=utc_now()))
    connection.execute(update(schedules).where(schedules.c.name == name).values(
        next_fire_at=next_fire_at, last_fire_at=due_at))
    return True


def skip_to(connection: Connection, name: str, next_fire_at: datetime) -> None:
    """Set the next due time without firing."""
    connection.execute(update(schedules).where(schedules.c.name == name).values(next_fire_at=next_fire_at))


def finish_fire(connection: Connection, name: str, due_at: datetime, outcome: FireOutcome,
                execution_id: str | None, reason: str | None) -> None:
    """Record a claimed fire's outcome, and the schedule's last execution when one started."""
    connection.execute(update(schedule_fires).where(
        schedule_fires.c.schedule_name == name, schedule_fires.c.due_at == due_at,
    ).values(outcome=FireOutcome(outcome).value, execution_id=execution_id, reason=reason))
    if execution_id is not None:
        connection.execute(update(schedules).where(schedules.c.name == name).values(
            last_execution_id=execution_id))


def list_fires(connection: Connection, name: str | None, outcome: FireOutcome | None,
               limit: int) -> list[ScheduleFire]:
    """Fires matching the filters, newest due time first."""
    query = select(schedule_fires).order_by(schedule_fires.c.due_at.desc(), schedule_fires.c.schedule_name)
    if name is not None:
        query = query.where(schedule_fires.c.schedule_name == name)
    if outcome is not None:
        query = query.where(schedule_fires.c.outcome == FireOutcome(outcome).value)
    return [_to_fire(row) for row in connection.execute(query.limit(limit))]


def collect_fires(connection: Connection, before: datetime, *, dry_run: bool) -> int:
    """Delete finished fires due before ``before``, keeping each schedule's latest fire; how many (would) go."""
    latest = (select(schedule_fires.c.schedule_name, func.max(schedule_fires.c.due_at).label("due_at"))
              .group_by(schedule_fires.c.schedule_name))
    keep = {(row.schedule_name, row.due_at) for row in connection.execute(latest)}
    old = connection.execute(select(schedule_fires.c.schedule_name, schedule_fires.c.due_at).where(
        schedule_fires.c.due_at < before, schedule_fires.c.outcome != FireOutcome.PENDING.value)).all()
    going = [(row.schedule_name, row.due_at) for row in old if (row.schedule_name, row.due_at) not in keep]
    if not dry_run:
        for name, due_at in going:
            connection.execute(delete(schedule_fires).where(schedule_fires.c.schedule_name == name,
                                                            schedule_fires.c.due_at == due_at))
    return len(going)


def _last_fire(connection: Connection, name: str) -> ScheduleFire | None:
    fires = list_fires(connection, name, None, 1)
    return fires[0] if fires else None


def _to_fire(row: Any) -> ScheduleFire:
    return ScheduleFire(schedule_name=row.schedule_name, due_at=row.due_at, outcome=FireOutcome(row.outcome),
                        created_at=row.created_at, execution_id=row.execution_id, reason=row.reason)


def _to_record(row: Any, last: ScheduleFire | None) -> ScheduleRecord:
    return ScheduleRecord(
        name=row.name,
        pipeline=StoredPipelineRef(row.pipeline_name, row.pipeline_version, row.code_snapshot, row.pipeline_source,
                                   row.work_dir),
        cron=row.cron, timezone=row.timezone, parameters=dict(row.parameters),
        catchup=CatchupPolicy(row.catchup), overlap=OverlapPolicy(row.overlap), paused=bool(row.paused),
        next_fire_at=row.next_fire_at, last_fire_at=row.last_fire_at, last_execution_id=row.last_execution_id,
        created_at=row.created_at, updated_at=row.updated_at,
        last_outcome=last.outcome if last else None, last_reason=last.reason if last else None,
    )
