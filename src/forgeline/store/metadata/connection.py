"""Engine creation: SQLite tuned for many concurrent writer processes, other URLs passed through."""

from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL, Connection

READ_ONLY_OPTION = "forgeline_read_only"
# Every engine this process made, so their idle connections can be closed before a fork (see release_connections).
_ENGINES: weakref.WeakSet[Engine] = weakref.WeakSet()
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0


def create_metadata_engine(database_url: str) -> Engine:
    """Create an engine for the URL; for SQLite also create the file's folder and install the pragmas."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    _make_sqlite_parent_dir(url)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_sqlite_transaction)
    _ENGINES.add(engine)
    return engine


def release_connections() -> None:
    """Close the idle pooled connections of every metadata engine of this process (they reopen on demand)."""
    for engine in list(_ENGINES):
        engine.dispose()


def read_only(engine: Engine) -> Engine:
    """A view of the engine whose transactions start with a plain (deferred) BEGIN: readers never lock."""
    return engine.execution_options(**{READ_ONLY_OPTION: True})


def _make_sqlite_parent_dir(url: URL) -> None:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # pysqlite's implicit BEGIN is deferred and misses SELECTs; we emit our own in _begin_sqlite_transaction.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_SECONDS * 1000)}")
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
