"""Engine creation: SQLite tuned for many concurrent writer processes, other URLs passed through.

SQLite errors a user must act on (a corrupt or read-only file) become one StoreError naming the file.
"""

from __future__ import annotations

import sqlite3
import weakref
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection, ExceptionContext

from forgeline.errors import StoreError
from forgeline.store.metadata.sqlite_file import check_database_file, display_path, read_only_url, sqlite_file

READ_ONLY_OPTION = "forgeline_read_only"
# Every engine this process made, so their idle connections can be closed before a fork (see release_connections).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
_CORRUPT = ("file is not a database", "database disk image is malformed")
_READ_ONLY = ("attempt to write a readonly database", "readonly database")


def create_metadata_engine(database_url: str, *, create: bool = True,
                           busy_timeout_seconds: float = SQLITE_BUSY_TIMEOUT_SECONDS) -> Engine:
    """Create an engine for the URL; for SQLite check the file first, then create its folder or open it read-only.

    ``create=False`` refuses (StoreNotFoundError) a SQLite file that does not exist instead of creating it.
    ``busy_timeout_seconds``: how long one SQLite statement waits for another process's write lock.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    path = sqlite_file(url)
    if path is not None:
        if check_database_file(path, create=create):
            url = read_only_url(path)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_seconds})
    busy_milliseconds = int(busy_timeout_seconds * 1000)

    def configure(dbapi_connection: Any, connection_record: Any) -> None:
        _configure_sqlite_connection(dbapi_connection, busy_milliseconds)

    event.listen(engine, "connect", configure)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    event.listen(engine, "handle_error", _explain_sqlite_error)
    _ENGINES.add(engine)
    return engine


def release_connections() -> None:
    """Close the idle pooled connections of every metadata engine of this process (they reopen on demand)."""
    for engine in list(_ENGINES):
        engine.dispose()


def read_only(engine: Engine) -> Engine:
    """A view of the engine whose transactions start with a plain (deferred) BEGIN: readers never lock."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _explain_sqlite_error(context: ExceptionContext) -> None:
    # Raising here replaces SQLAlchemy's exception: the user gets the file and what to do, not a driver message.
    error = context.original_exception
    if not isinstance(error, sqlite3.DatabaseError) or context.engine is None:
        return
    message = str(error)
    path = display_path(context.engine.url)
    if message in _CORRUPT:
        raise StoreError(
            f"the metadata database {path} is corrupt ({message}): restore it from a backup, or move it aside "
            f"(mv {path} {path}.corrupt) to start a new, empty store"
        ) from error
    if any(fragment in message for fragment in _READ_ONLY):
        raise StoreError(
            f"the metadata database {path} is read-only (its file or folder cannot be written) and this command "
            "writes; run it where the store is writable (read-only commands such as executions list, logs and "
            "models list still work)"
        ) from error
    if message == "unable to open database file":
        raise StoreError(f"cannot open the metadata database {path}: check that it exists and can be read") from error


def _configure_sqlite_connection(dbapi_connection: Any, busy_milliseconds: int) -> None:
    # pysqlite's implicit BEGIN is deferred and misses SELECTs; we emit our own in _begin_sqlite_transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {busy_milliseconds}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    # A deferred transaction that later writes cannot wait for the lock (SQLITE_BUSY at once in WAL mode);
    # BEGIN IMMEDIATE takes the write lock up front, so busy_timeout queues writers instead.
    if connection.get_execution_options().get(READ_ONLY_OPTION):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
