"""A SQLite metadata file is checked before it is opened: missing, emptied beside earlier work, or a folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import make_url

from forgeline.errors import StoreError, StoreNotFoundError
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.sqlite_file import check_database_file, display_path, read_only_url, sqlite_file


def test_a_missing_file_is_created_only_when_asked(tmp_path: Path) -> None:
    database = tmp_path / "home" / "forgeline.db"

    with pytest.raises(StoreNotFoundError, match=f"no forgeline metadata database at {database}"):
        SqlMetadataStore(f"sqlite:///{database}", create=False)
    assert not (tmp_path / "home").exists()
    SqlMetadataStore(f"sqlite:///{database}").close()
    assert database.is_file()
    SqlMetadataStore(f"sqlite:///{database}", create=False).close()


def test_an_empty_file_is_refused_only_beside_earlier_work(tmp_path: Path) -> None:
    database = tmp_path / "forgeline.db"
    database.write_bytes(b"")
    (tmp_path / "artifacts").mkdir()  # an empty folder is no earlier work

    assert check_database_file(database, create=False) is False
    (tmp_path / "artifacts" / "executions").mkdir()
    with pytest.raises(StoreError, match=r"empty \(0 bytes\).*artifacts of earlier executions.*move it aside"):
        check_database_file(database, create=True)
    with pytest.raises(StoreError):
        SqlMetadataStore(f"sqlite:///{database}")
    assert database.stat().st_size == 0


def test_a_folder_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "forgeline.db").mkdir()

    with pytest.raises(StoreError, match="is a folder, not a SQLite file"):
        SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")


def test_read_only_urls_name_the_file_and_read_through_an_existing_log(tmp_path: Path) -> None:
    database = tmp_path / "a b%c" / "forgeline.db"
    database.parent.mkdir()
    database.write_bytes(b"x")

    url = read_only_url(database)
    assert (url.query["mode"], url.query["immutable"]) == ("ro", "1")
    assert display_path(url) == str(database)
    Path(f"{database}-wal").write_bytes(b"log")
    assert "immutable" not in read_only_url(database).query
    assert sqlite_file(make_url("sqlite://")) is None and sqlite_file(make_url("postgresql://h/db")) is None
