"""Settings: FORGELINE_HOME found like git finds .git, and the keep-jobs setting passed on to child processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeline.config import Settings, find_home
from forgeline.errors import ConfigurationError


def test_the_nearest_store_above_wins(tmp_path: Path) -> None:
    (tmp_path / ".forgeline").mkdir()
    (tmp_path / "project" / ".forgeline").mkdir(parents=True)
    deep = tmp_path / "project" / "src" / "pkg"
    deep.mkdir(parents=True)
    (tmp_path / "project" / "src" / ".forgeline").write_text("a file is not a store")

    assert find_home(deep) == tmp_path / "project" / ".forgeline"
    assert find_home(tmp_path / "project") == tmp_path / "project" / ".forgeline"
    assert find_home(tmp_path) == tmp_path / ".forgeline"


def test_settings_without_forgeline_home_use_the_found_store_or_say_where_they_looked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    above = [folder for folder in tmp_path.parents if (folder / ".forgeline").is_dir()]
    assert not above, f"a .forgeline folder above the test folder would be found: {above}"
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)

    nothing = Settings.from_env({})
    (tmp_path / "a" / ".forgeline").mkdir()
    found = Settings.from_env({})
    explicit = Settings.from_env({"FORGELINE_HOME": str(tmp_path / "elsewhere")})

    assert (nothing.home, nothing.searched_from) == (sub / ".forgeline", sub)
    assert not (sub / ".forgeline").exists()  # finding creates nothing
    assert (found.home, found.searched_from) == (tmp_path / "a" / ".forgeline", None)
    assert found.database_url == f"sqlite:///{tmp_path / 'a' / '.forgeline' / 'forgeline.db'}"
    assert (explicit.home, explicit.searched_from) == (tmp_path / "elsewhere", None)


def test_keep_jobs_is_a_setting_children_see(tmp_path: Path) -> None:
    kept = Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_KEEP_JOBS": "yes"})

    assert kept.keep_jobs and Settings.from_env(kept.to_env()).keep_jobs
    assert not Settings.from_env({"FORGELINE_HOME": str(tmp_path)}).keep_jobs
    with pytest.raises(ConfigurationError, match="FORGELINE_KEEP_JOBS='maybe'"):
        Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_KEEP_JOBS": "maybe"})


def test_store_retry_seconds_is_a_setting_children_see(tmp_path: Path) -> None:
    patient = Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_STORE_RETRY_SECONDS": "120"})

    assert patient.store_retry_seconds == 120 and Settings.from_env(patient.to_env()).store_retry_seconds == 120
    assert Settings.from_env({"FORGELINE_HOME": str(tmp_path)}).store_retry_seconds == 30
    for bad in ("soon", "0", "-5"):
        with pytest.raises(ConfigurationError, match=f"FORGELINE_STORE_RETRY_SECONDS='{bad}'"):
            Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_STORE_RETRY_SECONDS": bad})


def test_max_concurrent_executions_is_a_whole_number_setting_children_see(tmp_path: Path) -> None:
    busy = Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_MAX_CONCURRENT_EXECUTIONS": "16"})

    assert busy.max_concurrent_executions == 16
    assert Settings.from_env(busy.to_env()).max_concurrent_executions == 16
    assert Settings.from_env({"FORGELINE_HOME": str(tmp_path)}).max_concurrent_executions == 4
    for bad in ("many", "0", "-1", "2.5"):
        with pytest.raises(ConfigurationError, match=f"FORGELINE_MAX_CONCURRENT_EXECUTIONS='{bad}' is not a whole"):
            Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_MAX_CONCURRENT_EXECUTIONS": bad})


def test_storage_options_are_a_setting_children_see_and_a_bad_one_is_refused_without_echoing_it(
    tmp_path: Path,
) -> None:
    options = {"s3": {"endpoint_url": "http://127.0.0.1:9000", "key": "k", "secret": "s"}}
    configured = Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_STORAGE_OPTIONS": json.dumps(options)})

    assert configured.storage_options == options and Settings.from_env(configured.to_env()).storage_options == options
    assert Settings.from_env({"FORGELINE_HOME": str(tmp_path)}).storage_options == {}
    for bad in ('{"s3": {"secret": "hunter2"', '["hunter2"]', '{"s3": "hunter2"}'):
        with pytest.raises(ConfigurationError, match="FORGELINE_STORAGE_OPTIONS") as refused:
            Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_STORAGE_OPTIONS": bad})
        assert "hunter2" not in str(refused.value)


def test_the_serving_connection_comes_from_its_own_variables() -> None:
    from forgeline.config import ServerConnection

    assert ServerConnection.serving_from_env({}) is None
    found = ServerConnection.serving_from_env({"FORGELINE_SERVING_URL": " http://127.0.0.1:8081/ ",
                                               "FORGELINE_SERVING_TOKEN": "s3cret", "FORGELINE_URL": "http://x:1"})
    assert found == ServerConnection("http://127.0.0.1:8081", "s3cret")
    with pytest.raises(ConfigurationError, match="FORGELINE_SERVING_URL='127.0.0.1:8081'.*forgeline serve"):
        ServerConnection.serving_from_env({"FORGELINE_SERVING_URL": "127.0.0.1:8081"})
