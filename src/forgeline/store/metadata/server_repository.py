"""Repository functions for server leases and cursors, each in a caller's transaction."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, delete, insert, or_, select, update

from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.tables import server_cursors, server_leases


def take_lease(connection: Connection, name: str, owner: str, seconds: float) -> bool:
    """Extend ``owner``'s lease or take an expired one; insert it when absent (a racing insert fails the caller)."""
    now = utc_now()
    expires = now + timedelta(seconds=seconds)
    taken = connection.execute(update(server_leases).where(
        server_leases.c.name == name,
        or_(server_leases.c.owner == owner, server_leases.c.expires_at < now),
    ).values(owner=owner, expires_at=expires))
    if taken.rowcount:
        return True
    if connection.execute(select(server_leases.c.name).where(server_leases.c.name == name)).first() is not None:
        return False
    connection.execute(insert(server_leases).values(name=name, owner=owner, expires_at=expires))
    return True


def drop_lease(connection: Connection, name: str, owner: str) -> None:
    """Delete the lease if ``owner`` holds it."""
    connection.execute(delete(server_leases).where(server_leases.c.name == name, server_leases.c.owner == owner))


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
