"""Who runs an execution: leases claimed with one conditional UPDATE, and the fencing epoch every write checks.

Each claim counts the execution's epoch up; an owner passes its epoch with every write, and a write whose epoch
is not the stored one is refused (StaleOwnerError), so an orchestrator that was paused or cut off while another
took over stops itself instead of overwriting the newer owner's work. On PostgreSQL the check locks the
execution row (FOR UPDATE), so a claim cannot slip between the check and the write; SQLite serialises writers.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, bindparam, case, func, literal, or_, select, text, update

from forgeline.errors import ExecutionNotFoundError, StaleOwnerError
from forgeline.store.metadata.column_types import UtcDateTime, utc_now
from forgeline.store.metadata.records import ExecutionStatus
from forgeline.store.metadata.tables import executions

UNFINISHED = (ExecutionStatus.QUEUED.value, ExecutionStatus.EXECUTING.value, ExecutionStatus.STOPPING.value)
RUNNING = (ExecutionStatus.EXECUTING.value, ExecutionStatus.STOPPING.value)
# Any constant works: it only has to be the same in every forgeline process claiming from one database.
_POSTGRES_QUEUE_LOCK_KEY = 0x666F726766


# Built once: every write of an orchestrator runs it, and building a statement costs more than running it.
_EPOCH_OF = select(executions.c.epoch, executions.c.owner).where(
    executions.c.id == bindparam("execution_id")).with_for_update()


def check_epoch(connection: Connection, execution_id: str, epoch: int | None) -> None:
    """StaleOwnerError unless ``epoch`` (when given) is the execution's current one; locks the row on PostgreSQL."""
    if epoch is None:
        return
    stored = connection.execute(_EPOCH_OF, {"execution_id": execution_id}).first()
    if stored is None:
        raise ExecutionNotFoundError(f"no execution '{execution_id}'")
    if stored.epoch != epoch:
        raise StaleOwnerError(
            f"execution {execution_id} is owned by {stored.owner or 'another orchestrator'} now (epoch "
            f"{stored.epoch}, this writer holds {epoch}); this writer stops and leaves the execution to it"
        )


def claim_execution(connection: Connection, execution_id: str, owner: str, lease_seconds: float) -> int | None:
    """Take the lease when the execution is unowned, its lease expired, it is Queued or ``owner`` holds it already.

    A Queued execution becomes Executing (started now). Returns the new epoch, or None when another owner's
    lease is live or the execution ended.
    """
    now = utc_now()
    free = or_(
        executions.c.owner.is_(None),
        executions.c.owner == owner,
        executions.c.lease_expires_at.is_(None),
        executions.c.lease_expires_at <= now,
        executions.c.status == ExecutionStatus.QUEUED.value,
    )
    queued = executions.c.status == ExecutionStatus.QUEUED.value
    result = connection.execute(
        update(executions)
        .where(executions.c.id == execution_id, executions.c.status.in_(UNFINISHED), free)
        .values(
            owner=owner,
            epoch=executions.c.epoch + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            status=case((queued, ExecutionStatus.EXECUTING.value), else_=executions.c.status),
            started_at=case((queued, literal(now, UtcDateTime())), else_=executions.c.started_at),
        )
    )
    if result.rowcount != 1:
        return None
    return int(connection.execute(select(executions.c.epoch).where(executions.c.id == execution_id)).scalar_one())


def renew_lease(connection: Connection, execution_id: str, epoch: int, lease_seconds: float) -> bool:
    """Extend the lease (and beat the heartbeat) of an unfinished execution still at ``epoch``; False otherwise."""
    now = utc_now()
    result = connection.execute(
        update(executions)
        .where(executions.c.id == execution_id, executions.c.epoch == epoch, executions.c.status.in_(UNFINISHED))
        .values(lease_expires_at=now + timedelta(seconds=lease_seconds), heartbeat_at=now)
    )
    return result.rowcount == 1


def claim_next_queued(connection: Connection, owner: str, lease_seconds: float,
                      max_running: int) -> tuple[str, int] | None:
    """Claim the oldest Queued execution when fewer than ``max_running`` executions hold a live lease."""
    if connection.dialect.name == "postgresql":
        # Claimers queue up here, so two of them cannot both see room for one more execution.
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_QUEUE_LOCK_KEY})
    now = utc_now()
    running = connection.execute(
        select(func.count()).select_from(executions).where(
            executions.c.status.in_(RUNNING), executions.c.lease_expires_at > now)
    ).scalar_one()
    if running >= max_running:
        return None
    for candidate in connection.execute(
        select(executions.c.id).where(executions.c.status == ExecutionStatus.QUEUED.value)
        .order_by(executions.c.created_at, executions.c.id).limit(5)
    ).scalars():
        epoch = claim_execution(connection, candidate, owner, lease_seconds)
        if epoch is not None:
            return candidate, epoch
    return None


def release_lost_claim(connection: Connection, execution_id: str) -> None:
    """Clear the owner and lease and count the epoch up: the previous owner is fenced, the next claim succeeds."""
    connection.execute(
        update(executions).where(executions.c.id == execution_id)
        .values(owner=None, lease_expires_at=None, epoch=executions.c.epoch + 1)
    )

