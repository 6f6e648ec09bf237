"""SqlMetadataStore on real SQLite files: the contract suite plus what is specific to SQL and SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from contracts.metadata_store_contract import MetadataStoreContract
from forgeline.errors import StoreError
from forgeline.store.metadata import content_index_repository, migrate
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ContentIndexEntry
from forgeline.store.metadata.sql_store import SqlMetadataStore


class TestSqlMetadataStore(MetadataStoreContract):
    """The shared contract, on a fresh SQLite file per test."""

    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[MetadataStore]:
        """A fresh SQLite-backed store."""
        sql_store = SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")
        yield sql_store
        sql_store.close()


def test_satisfies_the_protocol(tmp_path: Path) -> None:
    store: MetadataStore = SqlMetadataStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert store.list_pipelines() == []


def test_creates_missing_folders_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "forgeline.db"
    SqlMetadataStore(f"sqlite:///{path}").close()
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == (migrate.HEAD_REVISION,)
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert {"pipelines", "pipeline_versions", "executions", "step_runs", "step_attempts"} <= tables
    assert {"cache_entries", "content_index", "metric_points"} <= tables


def test_reopening_a_current_database_does_not_run_alembic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    SqlMetadataStore(url).close()

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("migrations ran on a current database")

    monkeypatch.setattr(migrate, "_upgrade_under_lock", fail)
    SqlMetadataStore(url).close()


def test_connections_use_wal_foreign_keys_normal_sync_and_busy_timeout(tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")
    with store._engine.connect() as connection:  # noqa: SLF001 - checking the connection setup itself
        pragma = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }
    store.close()
    # a third of FORGELINE_STORE_RETRY_SECONDS (30 s): the store tries again twice within it
    assert pragma == {"journal_mode": "wal", "foreign_keys": 1, "synchronous": 1, "busy_timeout": 10000}


def test_a_database_from_a_newer_forgeline_is_refused_clearly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    store = SqlMetadataStore(url)
    with store._engine.begin() as connection:  # noqa: SLF001 - simulating a future schema
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreError, match="revision '9999'.*upgrade forgeline"):
        SqlMetadataStore(url)


def test_accepts_a_relative_sqlite_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    SqlMetadataStore("sqlite:///home/forgeline.db").close()
    assert (tmp_path / "home" / "forgeline.db").exists()


def test_content_lookups_bind_at_most_one_batch_of_paths_per_query(tmp_path: Path) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")
    paths = [f"/data/{index}" for index in range(1201)]
    store.remember_content(ContentIndexEntry(path, 1, "v", "d") for path in paths)
    bound: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "content_index" in statement:
            bound.append(len(parameters))

    event.listen(store._engine, "before_cursor_execute", count)  # noqa: SLF001 - observing the SQL itself
    found = store.lookup_content(paths)
    store.close()
    assert len(found) == len(paths)
    assert bound == [500, 500, 201]


def test_content_index_upsert_falls_back_to_delete_and_insert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")
    store.remember_content([ContentIndexEntry("/d/a", 1, "v1", "d1"), ContentIndexEntry("/d/b", 1, "v1", "d1")])
    with store._engine.begin() as connection:  # noqa: SLF001 - driving the repository on a "foreign" dialect
        monkeypatch.setattr(connection.dialect, "name", "otherdb")
        content_index_repository.remember(connection, [ContentIndexEntry("/d/a", 2, "v2", "d2")] * 2)
    monkeypatch.undo()
    assert store.lookup_content(["/d/a", "/d/b"]) == {
        "/d/a": ContentIndexEntry("/d/a", 2, "v2", "d2"),
        "/d/b": ContentIndexEntry("/d/b", 1, "v1", "d1"),
    }
    store.close()
