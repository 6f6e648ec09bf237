"""Repository functions for the content index (path -> size, version, digest), inside a caller's transaction."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.dialects import sqlite

from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.records import ContentIndexEntry
from forgeline.store.metadata.rows import to_content_index_entry
from forgeline.store.metadata.tables import content_index

# Well below every backend's limit on bound parameters in one statement (SQLite's was 999 before 3.32).
BATCH_SIZE = 500
_UPDATED_COLUMNS = ("path", "size", "version", "digest", "updated_at")

_Item = TypeVar("_Item")


def path_hash(path: str) -> str:
    """The key of a path in the content index: hex sha256 of its UTF-8 bytes."""
    return hashlib.sha256(path.encode("utf-8")).hexdigest()


def lookup(connection: Connection, paths: Iterable[str]) -> dict[str, ContentIndexEntry]:
    """The known entries among these paths, keyed by path; unknown paths are simply absent."""
    by_hash = {path_hash(path): path for path in paths}
    found: dict[str, ContentIndexEntry] = {}
    for batch in _batches(list(by_hash)):
        rows = connection.execute(select(content_index).where(content_index.c.path_hash.in_(batch)))
        for row in rows:
            if by_hash.get(row.path_hash) == row.path:
                found[row.path] = to_content_index_entry(row)
    return found


def remember(connection: Connection, entries: Iterable[ContentIndexEntry]) -> None:
    """Insert or replace the entries (for a path given twice, the last one wins)."""
    now = utc_now()
    rows_by_hash = {
        path_hash(entry.path): {
            "path_hash": path_hash(entry.path),
            "path": entry.path,
            "size": entry.size,
            "version": entry.version,
            "digest": entry.digest,
            "updated_at": now,
        }
        for entry in entries
    }
    for batch in _batches(list(rows_by_hash.values())):
        _upsert(connection, batch)


def _upsert(connection: Connection, rows: list[dict[str, Any]]) -> None:
    # Rows are unique by path_hash here: PostgreSQL refuses to update one row twice in a statement.
    dialect = connection.dialect.name
    if dialect == "sqlite":
        sqlite_insert = sqlite.insert(content_index)
        connection.execute(
            sqlite_insert.on_conflict_do_update(
                index_elements=[content_index.c.path_hash],
                set_={name: sqlite_insert.excluded[name] for name in _UPDATED_COLUMNS},
            ),
            rows,
        )
    elif dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # its import pulls in every PostgreSQL driver adapter

        postgresql_insert = postgresql.insert(content_index)
        connection.execute(
            postgresql_insert.on_conflict_do_update(
                index_elements=[content_index.c.path_hash],
                set_={name: postgresql_insert.excluded[name] for name in _UPDATED_COLUMNS},
            ),
            rows,
        )
    else:
        # Any other database: safe too, as the caller's transaction makes the pair atomic.
        connection.execute(
            delete(content_index).where(content_index.c.path_hash.in_([row["path_hash"] for row in rows]))
        )
        connection.execute(insert(content_index), rows)


def _batches(items: list[_Item]) -> Iterator[list[_Item]]:
    for start in range(0, len(items), BATCH_SIZE):
        yield items[start : start + BATCH_SIZE]
