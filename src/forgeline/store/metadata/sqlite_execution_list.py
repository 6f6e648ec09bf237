"""Executions on a SQLite store, read with the standard library's sqlite3 instead of SQLAlchemy.

Importing SQLAlchemy costs a command more than everything else it does, and `executions list` needs one SELECT,
as does ``wait()`` in a process that only started a pipeline (``PipelineExecution.started``). This
reader answers only when it can answer exactly as ``SqlMetadataStore.list_executions`` would: a plain SQLite
file URL, a file that exists and is a database at this forgeline's schema revision (checked with one query),
opened read-only (as the store opens a read-only file). Otherwise, or on any SQLite error (a lock, a corrupt
file), it returns None and the caller asks the store, which migrates, waits, retries and explains as usual.
Rows become records through the store's own conversion (``execution_record.to_execution``).
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from forgeline.errors import StoreError
from forgeline.store.metadata.execution_record import ExecutionRecord, ExecutionStatus, require_aware, to_execution
from forgeline.store.metadata.revision import HEAD_REVISION
from forgeline.store.metadata.sqlite_file import check_database_file, read_only_parameters

SQLITE_URL_PREFIX = "sqlite:///"
DATETIME_COLUMNS = frozenset({"created_at", "started_at", "ended_at", "heartbeat_at", "lease_expires_at"})
"""Columns of type UtcDateTime: SQLite holds them as naive UTC text, ``YYYY-MM-DD HH:MM:SS.ffffff``."""
JSON_COLUMNS = frozenset({"parameters", "started_by"})
"""Columns of type JSON: SQLite holds them as JSON text."""
COLUMNS = ("id", "pipeline_name", "pipeline_version", "status", "parameters", "work_dir", "created_at",
           "started_at", "ended_at", "failure_reason", "orchestrator_pid", "heartbeat_at", "parent_execution_id",
           "owner", "epoch", "lease_expires_at", "code_snapshot", "started_by")
"""Every column of the executions table (tables.py; a test checks the two agree, with the kinds above)."""
DEFAULT_TIMEOUT_SECONDS = 1.0
"""How long a statement waits for a lock before the reader gives up and the store (with its retries) answers."""


def list_sqlite_executions(database_url: str, pipeline_name: str | None = None, limit: int = 50, *,
                           statuses: Collection[ExecutionStatus] | None = None, since: datetime | None = None,
                           timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> list[ExecutionRecord] | None:
    """What ``SqlMetadataStore.list_executions`` returns for these filters, or None when the store must answer."""
    require_aware("since", since)
    sql, arguments = _listing_query(pipeline_name, limit, statuses, since)
    return _read_executions(database_url, sql, arguments, timeout_seconds)


def read_sqlite_execution(database_url: str, execution_id: str,
                          timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS) -> ExecutionRecord | None:
    """The execution with exactly this id, as ``SqlMetadataStore.get_execution`` returns it; None when the store
    must answer (no such execution included: the store says so, and resolves id prefixes)."""
    found = _read_executions(database_url, f"SELECT {', '.join(COLUMNS)} FROM executions WHERE id = ?",
                             [execution_id], timeout_seconds)
    return found[0] if found else None


def _read_executions(database_url: str, sql: str, arguments: list[Any],
                     timeout_seconds: float) -> list[ExecutionRecord] | None:
    """The executions one SELECT of every column finds, read in one snapshot; None when the store must answer."""
    path = sqlite_database_path(database_url)
    if path is None:
        return None
    try:
        read_only = check_database_file(path, create=False)
        parameters = read_only_parameters(path) if read_only else {"mode": "ro"}
        uri = f"file:{urllib.parse.quote(str(path))}?{urllib.parse.urlencode(parameters)}"
        connection = sqlite3.connect(uri, uri=True, timeout=timeout_seconds, isolation_level=None)
    except (StoreError, OSError, sqlite3.Error):
        return None
    try:
        connection.execute("BEGIN")  # one snapshot for the revision and the rows
        revision = connection.execute("SELECT version_num FROM alembic_version").fetchall()
        if revision != [(HEAD_REVISION,)]:
            return None
        return [to_execution(_decoded(row)) for row in connection.execute(sql, arguments)]
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def sqlite_database_path(database_url: str) -> Path | None:
    """The file of a plain ``sqlite:///<path>`` URL, as the store resolves it; None for any other URL.

    URLs with a driver, a query, escapes (``%``) or a ``file:`` URI are left to the store, which parses them.
    """
    if not database_url.startswith(SQLITE_URL_PREFIX):
        return None
    database = database_url.removeprefix(SQLITE_URL_PREFIX)
    if not database or database == ":memory:" or database.startswith("file:") or any(c in database for c in "?%#"):
        return None
    return Path(database).expanduser().absolute()


def stored_datetime(moment: datetime) -> str:
    """An aware datetime as the executions table holds it on SQLite (UTC, microseconds always written)."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _listing_query(pipeline_name: str | None, limit: int, statuses: Collection[ExecutionStatus] | None,
                   since: datetime | None) -> tuple[str, list[Any]]:
    conditions: list[str] = []
    arguments: list[Any] = []
    if pipeline_name is not None:
        conditions.append("pipeline_name = ?")
        arguments.append(pipeline_name)
    if statuses is not None:
        values = [status.value for status in statuses]
        conditions.append(f"status IN ({', '.join('?' * len(values))})" if values else "0 = 1")
        arguments.extend(values)
    if since is not None:
        conditions.append("created_at >= ?")
        arguments.append(stored_datetime(since))
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (f"SELECT {', '.join(COLUMNS)} FROM executions{where} "
           "ORDER BY created_at DESC, id DESC LIMIT ?")
    return sql, [*arguments, limit]


def _decoded(row: tuple[Any, ...]) -> SimpleNamespace:
    values = dict(zip(COLUMNS, row, strict=True))
    for name in DATETIME_COLUMNS:
        if values[name] is not None:
            moment = datetime.fromisoformat(values[name])
            values[name] = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    for name in JSON_COLUMNS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    return SimpleNamespace(**values)
