"""Repository functions for server leases and cursors, each in a caller's transaction."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, case, insert, or_, select, update

from forgeline.errors import StaleLeaseError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.tables import server_cursors, server_leases


def take_lease(connection: Connection, name: str, owner: str, seconds: float) -> int | None:
    """Extend ``owner``'s lease (same epoch) or take an expired one (the next epoch); the epoch held, or None.

    The lease is inserted when absent (a racing insert fails the caller). Rows are never deleted, so an epoch
    is never handed out twice.
    """
    now = utc_now()
    expires = now + timedelta(seconds=seconds)
    held_by_owner = server_leases.c.owner == owner
    taken = connection.execute(update(server_leases).where(
        server_leases.c.name == name, or_(held_by_owner, server_leases.c.expires_at < now),
    ).values(owner=owner, expires_at=expires,
             epoch=case((held_by_owner, server_leases.c.epoch), else_=server_leases.c.epoch + 1)))
    if taken.rowcount:
        return int(connection.execute(select(server_leases.c.epoch).where(server_leases.c.name == name))
                   .scalar_one())
    if connection.execute(select(server_leases.c.name).where(server_leases.c.name == name)).first() is not None:
        return None
    connection.execute(insert(server_leases).values(name=name, owner=owner, expires_at=expires, epoch=1))
    return 1


def drop_lease(connection: Connection, name: str, owner: str) -> None:
    """Let the lease expire now if ``owner`` holds it (the row and its epoch stay)."""
    connection.execute(update(server_leases).where(server_leases.c.name == name, server_leases.c.owner == owner)
                       .values(expires_at=utc_now() - timedelta(seconds=1)))


def check_lease(connection: Connection, name: str, epoch: int) -> None:
    """StaleLeaseError unless the lease ``name`` is still at ``epoch``; locks its row on PostgreSQL."""
    stored = connection.execute(select(server_leases.c.owner, server_leases.c.epoch)
                                .where(server_leases.c.name == name).with_for_update()).first()
    if stored is None or stored.epoch != epoch:
        holder = "nobody" if stored is None else f"{stored.owner} (epoch {stored.epoch})"
        raise StaleLeaseError(f"the {name} lease is held by {holder} now, not at epoch {epoch} as this process "
                              "held it: this write is refused and this process stops acting for the duty")


def load_cursor(connection: Connection, name: str) -> int | None:
    """A reader's position, or None."""
    value = connection.execute(select(server_cursors.c.position).where(server_cursors.c.name == name)).scalar()
    return None if value is None else int(value)


def save_cursor(connection: Connection, name: str, position: int) -> None:
    """Insert or move a reader's position."""
    moved = connection.execute(update(server_cursors).where(server_cursors.c.name == name)
                               .values(position=position, updated_at=utc_now()))
    if not moved.rowcount:
        connection.execute(insert(server_cursors).values(name=name, position=position, updated_at=utc_now()))
