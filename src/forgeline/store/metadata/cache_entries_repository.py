"""Repository functions for the step cache, each run inside a caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, delete, insert, select

from forgeline.store.metadata.execution_record import require_aware
from forgeline.store.metadata.records import CacheEntry
from forgeline.store.metadata.rows import cache_entry_values, to_cache_entry
from forgeline.store.metadata.tables import cache_entries

# Entries made in the same instant still come back in the order they were put.
_NEWEST_FIRST = (cache_entries.c.created_at.desc(), cache_entries.c.id.desc())


def insert_cache_entry(connection: Connection, entry: CacheEntry) -> None:
    """Add an entry; earlier entries with the same key stay (the engine validates candidates newest first)."""
    connection.execute(insert(cache_entries).values(**cache_entry_values(entry)))


def find_cache_entries(
    connection: Connection, cache_key: str, not_before: datetime | None, limit: int
) -> list[CacheEntry]:
    """Up to limit entries with this key, newest first, none created before not_before."""
    require_aware("not_before", not_before)
    query = select(cache_entries).where(cache_entries.c.cache_key == cache_key).order_by(*_NEWEST_FIRST).limit(limit)
    if not_before is not None:
        query = query.where(cache_entries.c.created_at >= not_before)
    return [to_cache_entry(row) for row in connection.execute(query)]


def latest_cache_entry(connection: Connection, pipeline_name: str, step_name: str) -> CacheEntry | None:
    """The newest entry of one step of one pipeline, whatever its key."""
    row = connection.execute(
        select(cache_entries)
        .where(cache_entries.c.pipeline_name == pipeline_name, cache_entries.c.step_name == step_name)
        .order_by(*_NEWEST_FIRST)
        .limit(1)
    ).first()
    return None if row is None else to_cache_entry(row)


def delete_cache_entries(connection: Connection, pipeline_name: str | None, cache_key: str | None) -> int:
    """Delete the entries matching every given filter (no filter: all of them) and say how many went."""
    conditions: list[ColumnElement[bool]] = []
    if pipeline_name is not None:
        conditions.append(cache_entries.c.pipeline_name == pipeline_name)
    if cache_key is not None:
        conditions.append(cache_entries.c.cache_key == cache_key)
    return connection.execute(delete(cache_entries).where(*conditions)).rowcount
