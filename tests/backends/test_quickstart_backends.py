"""The quickstart journey on real backends: metadata in PostgreSQL, artifacts in S3 (moto's server on loopback).

Users switch backends with the environment only (FORGELINE_DATABASE_URL, FORGELINE_ARTIFACT_ROOT and the
standard AWS variables), so that is all these tests set: the orchestrator and every job subprocess inherit it.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

from forgeline.config import Settings
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.sql_store import SqlMetadataStore

from .conftest import Backend

PIPELINE = "examples/quickstart/pipeline.py"
EXPECTED_STATUSES = {
    "Prepare": "Succeeded",
    "Fit": "Succeeded",
    "Evaluate": "Succeeded",
    "AccuracyGate": "Succeeded",
    "Summarize": "Succeeded",
    "TooInaccurate": "Skipped",
}
OUTPUTS = {("Prepare", "train"), ("Prepare", "test"), ("Fit", "model"), ("Evaluate", "evaluation")}


def _accuracy(steps: dict[str, Any]) -> float:
    value = steps["Evaluate"].properties["PropertyFiles"]["Evaluation"]["metrics"]["accuracy"]["value"]
    assert isinstance(value, float)
    return value


def _check_succeeded_run(steps: dict[str, Any], execution_id: str, artifacts: ArtifactStore) -> None:
    """Every step ran, outputs and the @step return value are stored, the property file was read."""
    assert {name: run.status.value for name, run in steps.items()} == EXPECTED_STATUSES
    outputs = {(step, out): uri for step, run in steps.items() for out, uri in run.outputs.items()}
    assert OUTPUTS <= set(outputs)
    for key, uri in outputs.items():
        assert artifacts.exists(uri), (key, uri)
    assert artifacts.list(outputs["Fit", "model"]) == [outputs["Fit", "model"] + "/model.joblib"]
    evaluation = json.loads(artifacts.read_bytes(outputs["Evaluate", "evaluation"] + "/evaluation.json"))
    accuracy = _accuracy(steps)
    assert accuracy == evaluation["metrics"]["accuracy"]["value"]
    assert steps["Summarize"].properties["Return"] == {"accuracy": accuracy, "run": execution_id}
    stored_return = artifacts.uri("executions", execution_id, "Summarize", "return.pkl")
    assert pickle.loads(artifacts.read_bytes(stored_return)) == {"accuracy": accuracy, "run": execution_id}


def _only_execution_id(store: SqlMetadataStore) -> str:
    records = store.list_executions()
    assert len(records) == 1, [r.id for r in records]
    return records[0].id


def _check_cli_inspection(cli: Any, backend: Backend, execution_id: str, steps: dict[str, Any]) -> None:
    """`executions list/describe` and `logs` work against the same backend."""
    listed = cli("executions", "list", env=backend.env)
    assert listed.returncode == 0, listed
    assert execution_id in listed.stdout and "Succeeded" in listed.stdout
    described = cli("executions", "describe", execution_id, env=backend.env)
    assert described.returncode == 0, described
    assert re.search(r"TrainRatio:\s*0\.7\b", described.stdout), described
    assert steps["Fit"].outputs["model"] in described.stdout
    logs = cli("logs", execution_id, "Fit", env=backend.env)
    assert logs.returncode == 0, logs
    assert re.search(r"trained on \d+ rows", logs.stdout), logs


# -- PostgreSQL metadata ----------------------------------------------------------------------------------------


def test_quickstart_from_python_with_postgres_metadata(
    quickstart: Any, postgres_backend: Backend, forgeline_home: Path, wait_for_end: Any
) -> None:
    execution = quickstart.start(parameters={"TrainRatio": 0.6})
    finished = wait_for_end(execution, timeout=120)

    assert finished.status == "Succeeded", finished.failure_reason
    _check_succeeded_run(finished.steps, execution.id, ArtifactStore(Settings.from_env().artifact_root))
    store = SqlMetadataStore(postgres_backend.env["FORGELINE_DATABASE_URL"])
    try:
        assert store.get_execution(execution.id).parameters["TrainRatio"] == 0.6
        assert [v.version for v in store.list_pipeline_versions("quickstart")] == [1]
        assert store.list_attempts(execution.id, "Fit")[0].log_path
    finally:
        store.close()
    assert not (forgeline_home / "forgeline.db").exists()  # nothing went to the default SQLite file


def test_quickstart_from_the_cli_with_postgres_metadata(
    cli: Any, postgres_backend: Backend, forgeline_home: Path
) -> None:
    run = cli("run", PIPELINE, "-p", "TrainRatio=0.7", env=postgres_backend.env)

    assert run.returncode == 0, run
    assert "Traceback" not in run.output
    store = SqlMetadataStore(postgres_backend.env["FORGELINE_DATABASE_URL"])
    try:
        execution_id = _only_execution_id(store)
        assert store.get_execution(execution_id).status.value == "Succeeded"
        steps = {run.name: run for run in store.list_step_runs(execution_id)}
    finally:
        store.close()
    _check_succeeded_run(steps, execution_id, ArtifactStore(Settings.from_env().artifact_root))
    _check_cli_inspection(cli, postgres_backend, execution_id, steps)
    assert not (forgeline_home / "forgeline.db").exists()


# -- S3 artifacts -------------------------------------------------------------------------------------------------


def _s3_keys(endpoint: str, bucket: str) -> list[str]:
    import boto3

    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_quickstart_from_python_with_s3_artifacts(
    quickstart: Any, s3_backend: Backend, s3_endpoint: str, s3_bucket: str, forgeline_home: Path,
    wait_for_end: Any,
) -> None:
    execution = quickstart.start(parameters={"TrainRatio": 0.6})
    finished = wait_for_end(execution, timeout=120)

    assert finished.status == "Succeeded", finished.failure_reason
    root = s3_backend.env["FORGELINE_ARTIFACT_ROOT"]
    for (step, output) in OUTPUTS:
        assert finished.steps[step].outputs[output] == f"{root}/executions/{execution.id}/{step}/{output}"
    # The test process's own (fsspec-cached) client, as a notebook's would be: it planned the run and listed.
    _check_succeeded_run(finished.steps, execution.id, ArtifactStore(root))
    keys = _s3_keys(s3_endpoint, s3_bucket)
    prefix = f"forgeline/executions/{execution.id}"
    for expected in ("Prepare/train/train.csv", "Prepare/test/test.csv", "Fit/model/model.joblib",
                     "Evaluate/evaluation/evaluation.json", "Summarize/return.pkl"):
        assert f"{prefix}/{expected}" in keys, keys
    assert not (forgeline_home / "artifacts").exists()  # nothing went to the default local folder


def test_quickstart_from_the_cli_with_s3_artifacts(
    cli: Any, s3_backend: Backend, forgeline_home: Path
) -> None:
    run = cli("run", PIPELINE, "-p", "TrainRatio=0.7", env=s3_backend.env)

    assert run.returncode == 0, run
    assert "Traceback" not in run.output
    store = SqlMetadataStore(Settings.from_env().database_url)
    try:
        execution_id = _only_execution_id(store)
        steps = {run.name: run for run in store.list_step_runs(execution_id)}
    finally:
        store.close()
    root = s3_backend.env["FORGELINE_ARTIFACT_ROOT"]
    assert steps["Fit"].outputs["model"].startswith(f"{root}/executions/{execution_id}/")
    _check_succeeded_run(steps, execution_id, ArtifactStore(root))
    _check_cli_inspection(cli, s3_backend, execution_id, steps)
    assert not (forgeline_home / "artifacts").exists()
