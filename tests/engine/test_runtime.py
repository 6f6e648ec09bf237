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
        Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_EXECUTOR": "spark"})
    assert str(raised.value) == ("FORGELINE_EXECUTOR='spark' is not an executor; accepted: local, ray, "
                                 "ray://<host>:<port>")


@pytest.mark.parametrize("value", ["ray://127.0.0.1", "ray://:6379", "ray://host:port", "ray:/h:1"])
def test_a_ray_address_without_host_and_port_is_refused(tmp_path, value):
    with pytest.raises(ConfigurationError, match="is not an executor; accepted: local, ray, ray://<host>:<port>"):
        Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_EXECUTOR": value})


def test_ray_executors_are_named_by_ray_or_the_cluster_address(tmp_path):
    settings = Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_EXECUTOR": "ray://10.0.0.5:6379"})
    assert settings.executor == "ray://10.0.0.5:6379"
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings.from_env({"FORGELINE_HOME": str(tmp_path), "FORGELINE_EXECUTOR": "Ray"}).executor == "ray"


def test_instance_types_are_json_objects_or_one_clear_error(tmp_path):
    env = {"FORGELINE_HOME": str(tmp_path), "FORGELINE_INSTANCE_TYPES": '{"big": {"num_cpus": 64}}'}
    settings = Settings.from_env(env)
    assert settings.instance_types == {"big": {"num_cpus": 64}}
    assert Settings.from_env(settings.to_env()).instance_types == {"big": {"num_cpus": 64}}
    with pytest.raises(ConfigurationError, match="FORGELINE_INSTANCE_TYPES must be a JSON object of objects"):
        Settings.from_env({**env, "FORGELINE_INSTANCE_TYPES": '{"big": 64}'})
    with pytest.raises(ConfigurationError, match="FORGELINE_INSTANCE_TYPES is not JSON"):
        Settings.from_env({**env, "FORGELINE_INSTANCE_TYPES": "{big"})


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
    with pytest.raises(ConfigurationError, match="no executor called 'spark'; FORGELINE_EXECUTOR accepts: local, ray"):
        executor_factory("spark", ArtifactStore(str(tmp_path)))(1)


def test_a_pipeline_s_own_executor_wins_over_the_settings(tmp_path):
    factory = executor_factory("ray", ArtifactStore(str(tmp_path)))
    executor = factory(1, "local")
    try:
        assert isinstance(executor, LocalExecutor)
    finally:
        executor.shutdown()
    with pytest.raises(ConfigurationError, match="FORGELINE_EXECUTOR='spark' is not an executor"):
        factory(1, "spark")
