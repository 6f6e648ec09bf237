"""The sqlite3 reader of `executions list` returns exactly what SqlMetadataStore.list_executions returns.

Same database, same filters: every field of every record, the order and the limit; and it hands the question
back to the store (None) whenever it could not answer the same way.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from forgeline.store.metadata import sqlite_execution_list as listing
from forgeline.store.metadata.column_types import UtcDateTime
from forgeline.store.metadata.records import ExecutionStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.sqlite_execution_list import list_sqlite_executions, sqlite_database_path
from forgeline.store.metadata.tables import executions
from forgeline.store.metadata.updates import ExecutionUpdate

BASE = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[tuple[str, SqlMetadataStore]]:
    """A store with executions of two pipelines in every status, with ties and every optional field set or not."""
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    store = SqlMetadataStore(url)
    for name in ("train", "score"):
        store.save_pipeline_version(name, {"steps": []})
    statuses = list(ExecutionStatus)
    for index in range(14):
        execution_id = f"e{index:02d}-{'abc'[index % 3]}"
        pipeline = "train" if index % 2 else "score"
        store.create_execution(
            execution_id=execution_id, pipeline_name=pipeline, pipeline_version=1,
            parameters={"Mode": f"m{index}", "n": index, "nested": {"list": [1, None, "é"]}} if index % 4 else {},
            work_dir=f"/projects/p{index}", steps=[("A", "Processing")],
            status=ExecutionStatus.QUEUED if index == 13 else ExecutionStatus.EXECUTING,
            code_snapshot="c" * 64 if index % 3 else None,
            started_by={"kind": "cli", "actor": "ann"} if index % 5 else None,
            parent_execution_id="e00-a" if index in (1, 6) else None,
        )
        if index % 3 == 0:
            store.claim_execution(execution_id, f"vm:{index}", 30.0)
        status = statuses[index % len(statuses)]
        if status not in (ExecutionStatus.QUEUED, ExecutionStatus.EXECUTING) and index != 13:
            store.update_execution(execution_id, ExecutionUpdate(
                status=status, ended_at=BASE + timedelta(hours=index), orchestrator_pid=1000 + index,
                heartbeat_at=BASE + timedelta(minutes=index), failure_reason=f"why {index}\nline two" if index % 2
                else None))
        # created_at under control: ties (ordered by id), whole seconds and microseconds
        pair = index // 2  # two executions per moment
        created = BASE + timedelta(minutes=pair * 10, microseconds=0 if pair % 2 == 0 else 123456 * pair)
        with store._engine.begin() as connection:  # the store's own column types write the stored form
            connection.execute(update(executions).where(executions.c.id == execution_id)
                               .values(created_at=created, started_at=None if index == 13 else created))
    yield url, store
    store.close()


FILTERS: list[dict[str, Any]] = [
    {},
    {"limit": 5},
    {"limit": 0},
    {"limit": -1},
    {"pipeline_name": "train"},
    {"pipeline_name": "nothing"},
    {"statuses": [ExecutionStatus.FAILED, ExecutionStatus.STOPPED]},
    {"statuses": [ExecutionStatus.QUEUED]},
    {"statuses": []},
    {"since": BASE + timedelta(minutes=20)},  # equal to a stored created_at: included
    {"since": BASE + timedelta(minutes=20, microseconds=1)},
    {"since": (BASE + timedelta(minutes=30)).astimezone(timezone(timedelta(hours=-5)))},  # another zone
    {"since": BASE + timedelta(minutes=10), "pipeline_name": "score", "statuses": [ExecutionStatus.SUCCEEDED,
                                                                                  ExecutionStatus.EXECUTING],
     "limit": 2},
]


@pytest.mark.parametrize("filters", FILTERS, ids=[str(sorted(f)) + str(i) for i, f in enumerate(FILTERS)])
def test_lists_exactly_what_the_store_lists(filled: tuple[str, SqlMetadataStore], filters: dict[str, Any]) -> None:
    url, store = filled

    read = list_sqlite_executions(url, **filters)
    expected = store.list_executions(**filters)

    assert read == expected
    assert [type(getattr(r, f)) for r in read for f in vars(r)] == [type(getattr(r, f)) for r in expected
                                                                    for f in vars(r)]


def test_the_fixture_exercises_every_field_set_and_unset(filled: tuple[str, SqlMetadataStore]) -> None:
    url, _ = filled
    records = list_sqlite_executions(url, limit=100)

    assert records is not None and len(records) == 14
    for field in vars(records[0]):
        values = [getattr(record, field) for record in records]
        if field not in ("id", "pipeline_name", "pipeline_version", "status", "parameters", "work_dir",
                         "created_at", "epoch"):
            assert None in values, field
        assert any(value not in (None, {}) for value in values), field
    assert all(r.created_at.tzinfo is UTC for r in records)


def test_reader_columns_are_the_tables_columns_with_their_kinds() -> None:
    assert listing.COLUMNS == tuple(executions.c.keys())
    assert listing.DATETIME_COLUMNS == {c.name for c in executions.c if isinstance(c.type, UtcDateTime)}
    assert listing.JSON_COLUMNS == {c.name for c in executions.c if c.type.__class__.__name__ == "JSON"}


def test_a_naive_since_is_refused(filled: tuple[str, SqlMetadataStore]) -> None:
    url, _ = filled

    with pytest.raises(ValueError, match="naive"):
        list_sqlite_executions(url, since=datetime(2026, 3, 1))


@pytest.mark.parametrize("url", ["postgresql://u@h/db", "sqlite://", "sqlite:///:memory:",
                                 "sqlite+pysqlite:////tmp/x.db", "sqlite:////tmp/a%20b/x.db",
                                 "sqlite:////tmp/x.db?timeout=3", "sqlite:///file:x.db?mode=ro&uri=true"])
def test_urls_the_store_must_parse_are_left_to_it(url: str) -> None:
    assert sqlite_database_path(url) is None
    assert list_sqlite_executions(url) is None


def test_a_relative_path_resolves_as_the_store_resolves_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)

    assert sqlite_database_path("sqlite:///sub/forgeline.db") == tmp_path / "sub" / "forgeline.db"


def test_a_missing_file_is_left_to_the_store_and_not_created(tmp_path: Path) -> None:
    path = tmp_path / "forgeline.db"

    assert list_sqlite_executions(f"sqlite:///{path}") is None
    assert not path.exists()


def test_an_older_or_newer_schema_is_left_to_the_store(filled: tuple[str, SqlMetadataStore]) -> None:
    url, _ = filled
    path = sqlite_database_path(url)
    assert path is not None
    for revision in ("0003", "0099"):
        with sqlite3.connect(path) as connection:
            connection.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        assert list_sqlite_executions(url) is None


@pytest.mark.parametrize("damage", ["empty", "corrupt", "not forgeline"])
def test_a_damaged_or_foreign_database_is_left_to_the_store(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "forgeline.db"
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "corrupt":
        path.write_bytes(os.urandom(8192))
    else:
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")

    assert list_sqlite_executions(f"sqlite:///{path}") is None


def test_a_locked_database_is_left_to_the_store(filled: tuple[str, SqlMetadataStore]) -> None:
    url, store = filled
    store.close()
    path = sqlite_database_path(url)
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA journal_mode = DELETE")  # a rollback journal: an exclusive lock keeps readers out
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert list_sqlite_executions(url, timeout_seconds=0.05) is None
    finally:
        holder.rollback()
        holder.close()


def test_a_read_only_store_is_read_without_writing_beside_it(filled: tuple[str, SqlMetadataStore],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url, store = filled
    expected = store.list_executions()
    store.close()  # the last connection checkpoints the log into the file and removes it
    path = sqlite_database_path(url)
    assert path is not None
    assert not Path(f"{path}-wal").exists()
    # what check_database_file says of a file that cannot be written (tests run as root, who can write anything)
    monkeypatch.setattr(listing, "check_database_file", lambda path, create: True)
    before = sorted(p.name for p in path.parent.iterdir())

    assert list_sqlite_executions(url) == expected
    assert sorted(p.name for p in path.parent.iterdir()) == before
