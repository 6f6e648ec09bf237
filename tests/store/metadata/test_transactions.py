"""Store faults on real databases: a held SQLite lock, a PostgreSQL connection cut mid-call, a deleted or replaced file.

Nothing is simulated: the lock is another connection's BEGIN IMMEDIATE, the cut is pg_terminate_backend, the
file is deleted or swapped on disk. Retries are observed through the pause between tries, never by timing.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import event

from forgeline.errors import ExecutionNotFoundError, StoreError, StoreReplacedError, StoreUnavailableError
from forgeline.store.metadata import transactions
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import ExecutionUpdate

SHORT_RETRY_SECONDS = 0.6


def _with_execution(store: SqlMetadataStore, execution_id: str = "exec-1") -> str:
    version = store.save_pipeline_version("p", {"steps": ["a"]})
    store.create_execution(execution_id=execution_id, pipeline_name="p", pipeline_version=version.version,
                           parameters={}, work_dir="/w", steps=[("a", "processing")])
    return execution_id


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A SQLite store file with one execution."""
    path = tmp_path / "forgeline.db"
    store = SqlMetadataStore(f"sqlite:///{path}")
    _with_execution(store)
    store.close()
    return path


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The pauses the store takes between tries, in order (each still really waits)."""
    taken: list[float] = []
    real = transactions.pause_for

    def record(seconds: float) -> None:
        taken.append(seconds)
        real(seconds)

    monkeypatch.setattr(transactions, "pause_for", record)
    return taken


@pytest.fixture
def write_lock(database: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock until the test releases it (rollback)."""
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    yield holder
    if holder.in_transaction:
        holder.rollback()
    holder.close()


def test_a_write_lock_held_throughout_ends_in_one_clear_error(database: Path, write_lock: sqlite3.Connection,
                                                            pauses: list[float]) -> None:
    store = SqlMetadataStore(f"sqlite:///{database}", retry_seconds=SHORT_RETRY_SECONDS)
    with pytest.raises(StoreUnavailableError) as raised:
        store.update_execution("exec-1", ExecutionUpdate(failure_reason="never written"))
    message = str(raised.value)
    assert str(database) in message and "database is locked" in message
    assert "FORGELINE_STORE_RETRY_SECONDS" in message and f"{SHORT_RETRY_SECONDS:g} s" in message
    assert pauses, "the store gave up without trying again"
    write_lock.rollback()
    assert store.get_execution("exec-1").failure_reason is None
    store.close()


def test_a_write_lock_released_while_the_store_waits_lets_the_write_through(
        database: Path, write_lock: sqlite3.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    # SQLite's own wait per try is a third of the retry time (2 s here): the first try meets the held lock.
    store = SqlMetadataStore(f"sqlite:///{database}", retry_seconds=6)
    pauses: list[float] = []

    def release_then_pause(seconds: float) -> None:
        pauses.append(seconds)
        write_lock.rollback()  # the other process finishes its long transaction

    monkeypatch.setattr(transactions, "pause_for", release_then_pause)
    updated = store.update_execution("exec-1", ExecutionUpdate(failure_reason="written after the wait"))
    assert updated.failure_reason == "written after the wait"
    assert len(pauses) == 1
    store.close()


def test_errors_that_a_retry_cannot_fix_are_raised_at_once(database: Path, pauses: list[float]) -> None:
    store = SqlMetadataStore(f"sqlite:///{database}")
    with pytest.raises(ExecutionNotFoundError):
        store.update_execution("missing", ExecutionUpdate(failure_reason="x"))
    with pytest.raises(StoreError, match="already exists"):
        _with_execution(store)  # a duplicate id is a constraint violation, not a fault
    assert pauses == []
    store.close()


def test_a_deleted_database_is_reported_and_never_recreated(database: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{database}")
    assert store.get_execution("exec-1").id == "exec-1"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    for call in (lambda: store.update_execution("exec-1", ExecutionUpdate(failure_reason="lost")),
                 lambda: store.get_execution("exec-1"),
                 store.list_executions):
        with pytest.raises(StoreReplacedError, match=f"{database} was deleted while this process was using it"):
            call()
    assert not database.exists()
    store.close()


def test_a_replaced_database_is_reported_and_left_alone(database: Path, tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{database}")
    store.update_execution("exec-1", ExecutionUpdate(failure_reason="before"))
    store.close()  # checkpoints the log into the file, so a copy holds everything
    store = SqlMetadataStore(f"sqlite:///{database}")
    backup = tmp_path / "backup.db"
    shutil.copyfile(database, backup)
    os.replace(backup, database)  # e.g. a restore from a backup while an orchestrator still runs
    with pytest.raises(StoreReplacedError, match="replaced by another file"):
        store.update_execution("exec-1", ExecutionUpdate(failure_reason="after"))
    store.close()
    reopened = SqlMetadataStore(f"sqlite:///{database}")  # a new process accepts the file as it now is
    assert reopened.get_execution("exec-1").failure_reason == "before"
    reopened.close()


def test_a_postgres_connection_cut_mid_call_is_retried(postgres_migrated_database_url: str,
                                                       postgres_server: Any, pauses: list[float]) -> None:
    store = SqlMetadataStore(postgres_migrated_database_url)
    execution_id = _with_execution(store)
    admin = f"host=127.0.0.1 port={postgres_server.port} user=postgres dbname=postgres"
    cut: list[int] = []

    def cut_once(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if cut or not statement.lstrip().upper().startswith("UPDATE"):
            return
        backend = connection.connection.dbapi_connection.info.backend_pid
        with psycopg.connect(admin, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (backend,))
        cut.append(backend)

    event.listen(store._engine, "before_cursor_execute", cut_once)  # noqa: SLF001 - cutting its own connection
    updated = store.update_execution(execution_id, ExecutionUpdate(failure_reason="written after a reconnect"))
    assert cut and len(pauses) >= 1
    assert updated.failure_reason == "written after a reconnect"
    assert store.get_execution(execution_id).failure_reason == "written after a reconnect"
    store.close()


@pytest.mark.parametrize(("message", "transient"), [
    ("database is locked", True), ("database table is locked", True),
    ("no such table: executions", False), ("database disk image is malformed", False),
])
def test_only_lock_errors_of_sqlite_are_transient(message: str, transient: bool) -> None:
    from sqlalchemy.exc import OperationalError

    assert transactions.is_transient(OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))) is transient
