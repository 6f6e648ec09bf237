"""The composition root: one Runtime from the settings, with the executor FORGELINE_EXECUTOR names."""

from __future__ import annotations

import pytest

from forgeline.config import Settings
from forgeline.engine.runtime import Runtime, executor_factory
from forgeline.errors import ConfigurationError
from forgeline.executors.local import LocalExecutor
from forgeline.store.artifacts import ArtifactStore


def test_the_executor_is_local_unless_set(tmp_path):
    settings = Settings.from_env({"FORGELINE_HOME": str(tmp_path)})
    assert settings.executor == "local"
    assert Settings.from_env({**settings.to_env(), "FORGELINE_EXECUTOR": " LOCAL "}).executor == "local"
    assert Settings.from_env(settings.to_env()) == settings  # a child process sees the same executor


def test_an_unknown_executor_is_one_error_naming_the_accepted_ones(tmp_path):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_EXECUTOR": "ray"})
    assert str(raised.value) == "FORGELINE_EXECUTOR='ray' is not an executor; accepted: local"


def test_a_runtime_holds_the_stores_and_makes_the_executor_of_each_execution(tmp_path):
    runtime = Runtime.build(Settings.from_env({"FORGELINE_HOME": str(tmp_path)}))
    assert runtime.artifacts.root.rstrip("/").endswith("artifacts")
    assert runtime.store.list_executions() == []
    executor = runtime.executor_factory(2)
    try:
        assert isinstance(executor, LocalExecutor)
    finally:
        executor.shutdown()


def test_a_runtime_never_creates_a_store_it_was_told_not_to(tmp_path):
    from forgeline.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError):
        Runtime.build(Settings.from_env({"FORGELINE_HOME": str(tmp_path)}), create=False)
    assert not (tmp_path / "forgeline.db").exists()


def test_an_executor_factory_for_an_unknown_name_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="no executor called 'ray'; FORGELINE_EXECUTOR accepts: local"):
        executor_factory("ray", ArtifactStore(str(tmp_path)))
