"""Stores a warm launcher keeps opened: real SQLite files, and children forked as the launcher forks them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from forgeline.config import Settings
from forgeline.engine.kept_stores import KEPT_STORES_LIMIT, KeptStores, keepable
from forgeline.engine.launch import database_files_closed
from forgeline.store.metadata.sql_store import SqlMetadataStore

DEFINITION = {"Version": "2020-12-01", "Steps": []}


def settings_of(home: Path) -> Settings:
    return Settings.from_env({"FORGELINE_HOME": str(home)})


def new_database(home: Path) -> Settings:
    """A home with a current metadata database, its connections closed."""
    settings = settings_of(home)
    SqlMetadataStore(settings.database_url).close()
    return settings


def in_child(kept: KeptStores, settings: Settings, pipeline: str | None = None) -> int:
    """Fork as the launcher does; the child takes the kept store (else opens its own, as a launcher's child does)
    and stores ``pipeline`` through it. Exit status: 0 took the kept one, 1 opened its own, 2 something failed."""
    pid = os.fork()
    if pid == 0:
        code = 2
        try:
            store = kept.take(settings)
            taken = store is not None
            if pipeline is not None:
                store = store or SqlMetadataStore(settings.database_url)
                store.save_pipeline_version(pipeline, DEFINITION)
            code = 0 if taken else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def listening(*kept_for: Settings, limit: int = KEPT_STORES_LIMIT) -> KeptStores:
    """A launcher's kept stores, listening for children, with the stores of ``kept_for`` kept."""
    kept = KeptStores(limit)
    kept.listen()
    for settings in kept_for:
        kept.keep(key(settings))
    return kept


def stored_pipelines(settings: Settings) -> list[str]:
    store = SqlMetadataStore(settings.database_url)
    try:
        return sorted(summary.name for summary in store.list_pipelines())
    finally:
        store.close()


def key(settings: Settings) -> tuple[str, float]:
    return settings.database_url, settings.store_retry_seconds


def test_a_kept_store_serves_a_forked_child_and_the_launcher_holds_no_file_of_its_database(tmp_path):
    settings = new_database(tmp_path / "home")

    kept = listening(settings)

    assert database_files_closed(settings.database_url)  # forking stays safe
    assert in_child(kept, settings, pipeline="through-the-kept-store") == 0
    assert stored_pipelines(settings) == ["through-the-kept-store"]
    assert database_files_closed(settings.database_url)


def test_a_child_that_found_no_store_asks_for_one_and_the_launcher_keeps_it(tmp_path):
    settings = new_database(tmp_path / "home")
    kept = listening()

    assert in_child(kept, settings) == 1
    work = kept.asked()
    assert len(work) == 1
    work[0]()

    assert kept.asked() == []  # nothing more was asked
    assert in_child(kept, settings) == 0
    assert in_child(kept, settings) == 0  # one child taking it leaves it kept for the next


def test_a_deleted_database_is_never_served_and_the_child_makes_a_new_one(tmp_path):
    home = tmp_path / "home"
    settings = new_database(home)
    kept = listening(settings)

    shutil.rmtree(home)

    assert in_child(kept, settings, pipeline="in-the-new-database") == 1
    assert kept.asked() == []  # it found no file to ask for: the next child asks
    assert stored_pipelines(settings) == ["in-the-new-database"]


def test_a_database_replaced_by_another_file_is_never_served_and_the_replacement_is_kept(tmp_path):
    home = tmp_path / "home"
    settings = new_database(home)
    kept = listening(settings)
    other = new_database(tmp_path / "other")
    writer = SqlMetadataStore(other.database_url)
    writer.save_pipeline_version("in-the-replacement", DEFINITION)
    writer.close()  # the last connection: its write-ahead log goes into the file copied next

    database = settings.database_url.removeprefix("sqlite:///")
    os.rename(database, f"{database}.old")  # still there, so the replacement cannot take its inode
    shutil.copy(other.database_url.removeprefix("sqlite:///"), database)

    assert in_child(kept, settings, pipeline="first") == 1  # not the store that was opened
    [work] = kept.asked()  # the replacement is asked for, and kept
    work()
    assert in_child(kept, settings, pipeline="second") == 0
    assert stored_pipelines(settings) == ["first", "in-the-replacement", "second"]


def test_the_least_recently_kept_store_goes_first(tmp_path):
    first, second, third = (new_database(tmp_path / name) for name in ("a", "b", "c"))
    kept = listening(first, second, third, limit=2)

    assert [in_child(kept, settings) for settings in (first, second, third)] == [1, 0, 0]


@pytest.mark.parametrize("url, expected", [
    ("absolute", True),
    ("sqlite:///relative/forgeline.db", False),
    ("missing", False),
    ("sqlite://", False),
    ("sqlite:///:memory:", False),
    ("postgresql://user@localhost/forgeline", False),
])
def test_only_an_existing_sqlite_file_named_by_an_absolute_path_is_kept(tmp_path, url, expected):
    database = new_database(tmp_path / "home").database_url
    urls = {"absolute": database, "missing": f"sqlite:///{tmp_path / 'nowhere' / 'forgeline.db'}"}
    assert keepable(urls.get(url, url)) is expected


def test_a_store_that_cannot_be_opened_is_not_kept(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "forgeline.db").write_text("not a database, but a file of the same name\n" * 100)
    settings = settings_of(home)
    kept = listening(settings)  # refused quietly: the child that needs it opens it and reports what is wrong

    assert in_child(kept, settings) == 1
    assert database_files_closed(settings.database_url)
