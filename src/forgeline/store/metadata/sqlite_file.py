"""A SQLite metadata file as found on disk, checked before it is opened: missing, emptied, read-only or usable.

SQLite itself would create a missing file, turn an emptied one into a fresh database, and refuse to open a
WAL database in a folder it cannot write. forgeline asks first, so that read commands never create a store,
an emptied database beside earlier work is refused instead of silently started over, and a read-only store
is opened read-only (``mode=ro``; ``immutable=1`` when no write-ahead log exists, since SQLite cannot create
one there).
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

from forgeline.errors import StoreError, StoreNotFoundError

if TYPE_CHECKING:  # SQLAlchemy is imported by the store that opens the URL, not to check a file
    from sqlalchemy.engine import URL

# Folders forgeline keeps next to its database (FORGELINE_HOME): work an emptied database would orphan.
EARLIER_WORK_FOLDERS = ("artifacts", "logs", "jobs")
_SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_file(url: URL) -> Path | None:
    """The database file of a SQLite URL, or None for other databases, in-memory ones and ``file:`` URIs."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser().absolute()


def sqlite_path(url: URL) -> Path | None:
    """The database file of any SQLite URL (plain path or read-only ``file:`` URI), None for other databases."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database.startswith("file:"):
        return Path(urllib.parse.unquote(database.removeprefix("file:")))
    return sqlite_file(url)


def check_database_file(path: Path, *, create: bool) -> bool:
    """Refuse a missing (unless ``create``) or emptied database; return whether it can only be read."""
    if not path.exists():
        if not create:
            raise StoreNotFoundError(f"no forgeline metadata database at {path}")
        return False
    if path.is_dir():
        raise StoreError(f"the metadata database {path} is a folder, not a SQLite file; "
                         "point FORGELINE_HOME or FORGELINE_DATABASE_URL at a forgeline store")
    if path.stat().st_size == 0 and not _has_write_ahead_log(path):
        earlier = earlier_work(path.parent)
        if earlier:
            raise StoreError(
                f"the metadata database {path} is empty (0 bytes) although {path.parent} holds the "
                f"{' and '.join(earlier)} of earlier executions; it was probably truncated: restore it from a "
                f"backup, or move it aside (mv {path} {path}.empty) to start a new, empty store"
            )
    return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def earlier_work(folder: Path) -> list[str]:
    """The non-empty folders of earlier executions (artifacts, logs, jobs) in ``folder``."""
    found = []
    for name in EARLIER_WORK_FOLDERS:
        try:
            with os.scandir(folder / name) as entries:
                if any(True for _ in entries):
                    found.append(name)
        except OSError:
            continue
    return found


def read_only_url(path: Path) -> URL:
    """A URL that opens the file read-only: through its write-ahead log when one exists, else as immutable."""
    from sqlalchemy.engine import URL

    return URL.create("sqlite", database="file:" + urllib.parse.quote(str(path)),
                      query={**read_only_parameters(path), "uri": "true"})


def read_only_parameters(path: Path) -> dict[str, str]:
    """SQLite URI parameters that open the file read-only: through its write-ahead log if one exists, else immutable."""
    query = {"mode": "ro"}
    if not _has_write_ahead_log(path):
        query["immutable"] = "1"
    return query


def is_read_only(url: URL) -> bool:
    """Whether a SQLite URL opens its database read-only."""
    return url.get_backend_name() == "sqlite" and url.query.get("mode") == "ro"


def display_path(url: URL) -> str:
    """The file a SQLite URL names, for messages (the URL itself for other databases)."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return url.render_as_string(hide_password=True)


def _has_write_ahead_log(path: Path) -> bool:
    try:
        return os.path.getsize(f"{path}{_SIDE_FILES[0]}") > 0
    except OSError:
        return False
