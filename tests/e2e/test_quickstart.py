"""The quickstart journey of the README: run it from the CLI and from Python, inspect what it did."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

from forgeline.engine.execution import PipelineExecution

DATASET = Path(__file__).resolve().parents[2] / "examples/quickstart/data/breast_cancer.csv"
EXPECTED_STATUSES = {
    "Prepare": "Succeeded",
    "Fit": "Succeeded",
    "Evaluate": "Succeeded",
    "AccuracyGate": "Succeeded",
    "Summarize": "Succeeded",
    "TooInaccurate": "Skipped",
}


def dataset_rows() -> int:
    with DATASET.open(newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def csv_rows(text: str) -> int:
    return sum(1 for _ in csv.reader(io.StringIO(text))) - 1


def only_execution_id(project_store) -> str:
    records = project_store.list_executions()
    assert len(records) == 1, [r.id for r in records]
    return records[0].id


def evaluated_accuracy(steps) -> float:
    return steps["Evaluate"].properties["PropertyFiles"]["Evaluation"]["metrics"]["accuracy"]["value"]


def test_quickstart_succeeds_from_the_cli_and_can_be_inspected(fresh_cli, project, forgeline_home):
    cli = fresh_cli  # the quickstart as typed: every command a new interpreter
    run = cli("run", "examples/quickstart/pipeline.py", "-p", "TrainRatio=0.7")

    assert run.returncode == 0, run
    assert "Traceback" not in run.output
    for name in EXPECTED_STATUSES:  # the live table names every step
        assert name in run.stdout, run
    execution_id = only_execution_id(project.store())
    assert re.search(rf"execution {execution_id}\s+Succeeded", run.stdout), run

    execution = PipelineExecution.get(execution_id)
    steps = {s.name: s for s in execution.list_steps()}
    assert execution.status == "Succeeded"
    assert {n: s.status.value for n, s in steps.items()} == EXPECTED_STATUSES
    assert execution.parameters["TrainRatio"] == 0.7

    # The override reached prepare.py: 70 % of the rows went to the training split.
    total = dataset_rows()
    train = csv_rows(project.read_output(steps["Prepare"].outputs["train"], "train.csv"))
    test = csv_rows(project.read_output(steps["Prepare"].outputs["test"], "test.csv"))
    assert train + test == total
    assert abs(train - 0.7 * total) <= 1

    listed = cli("executions", "list")
    assert listed.returncode == 0, listed
    assert execution_id in listed.stdout and "Succeeded" in listed.stdout and "quickstart" in listed.stdout

    logs = cli("logs", execution_id, "Fit")
    assert logs.returncode == 0, logs
    assert f"trained on {train} rows" in logs.stdout, logs

    prepare_logs = cli("logs", execution_id, "Prepare")
    assert f"read {total} rows from breast_cancer.csv: {train} train, {test} test" in prepare_logs.stdout

    described = cli("executions", "describe", execution_id)
    assert described.returncode == 0, described
    text = described.stdout
    assert execution_id in text and "Succeeded" in text
    assert re.search(r"started: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text), text  # times are shown
    assert re.search(r"ended: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text), text
    for name, value in [("TrainRatio", "0.7"), ("Seed", "7"), ("AccuracyThreshold", "0.9")]:
        assert re.search(rf"{name}:\s*{re.escape(value)}\b", text), (name, text)
    for name in EXPECTED_STATUSES:
        assert name in text
    assert steps["Fit"].outputs["model"] in text  # outputs are listed with their URIs


def test_quickstart_succeeds_from_python(quickstart, forgeline_home, wait_for_end):
    execution = quickstart.start(parameters={"TrainRatio": 0.5})  # returns at once: test_execution_lifecycle.py

    assert execution.status in ("Executing", "Succeeded")
    assert isinstance(execution.id, str) and execution.id

    finished = wait_for_end(execution, timeout=120)
    assert finished.status == "Succeeded", finished.failure_reason
    assert execution.failure_reason is None
    assert finished.statuses() == EXPECTED_STATUSES

    for name, run in finished.steps.items():
        if run.status.value == "Skipped":
            assert run.started_at is None or isinstance(run.started_at, datetime)
            continue
        assert isinstance(run.started_at, datetime), name
        assert isinstance(run.ended_at, datetime), name
        assert run.started_at <= run.ended_at, name
    for name in ("Prepare", "Fit", "Evaluate", "Summarize"):
        assert finished.steps[name].attempts == 1, name
        assert finished.steps[name].failure_reason is None

    # Step outputs are URIs that exist in the artifact store.
    from forgeline.config import Settings
    from forgeline.store.artifacts import ArtifactStore

    artifacts = ArtifactStore(Settings.from_env().artifact_root)
    outputs = {(step, out): uri for step, run in finished.steps.items() for out, uri in run.outputs.items()}
    assert {("Prepare", "train"), ("Prepare", "test"), ("Fit", "model"), ("Evaluate", "evaluation")} <= set(outputs)
    for key, uri in outputs.items():
        assert artifacts.exists(uri), (key, uri)
    assert artifacts.exists(outputs["Fit", "model"].rstrip("/") + "/model.joblib")
    evaluation = json.loads(artifacts.read_bytes(outputs["Evaluate", "evaluation"].rstrip("/") + "/evaluation.json"))

    # The @step's return value holds the accuracy the gate read and this execution's id.
    accuracy = evaluated_accuracy(finished.steps)
    assert accuracy == evaluation["metrics"]["accuracy"]["value"]
    assert finished.steps["Summarize"].properties["Return"] == {"accuracy": accuracy, "run": execution.id}

    # TrainRatio=0.5 reached prepare.py.
    total = dataset_rows()
    train_uri = finished.steps["Prepare"].outputs["train"].rstrip("/") + "/train.csv"
    train = csv_rows(artifacts.read_bytes(train_uri).decode())
    assert abs(train - 0.5 * total) <= 1
    assert execution.parameters == {
        "InputData": "examples/quickstart/data/breast_cancer.csv", "TrainRatio": 0.5, "Seed": 7,
        "AccuracyThreshold": 0.9,
    }


def test_quickstart_below_the_threshold_fails_with_the_fail_step_message(cli, project, forgeline_home):
    run = cli("run", "examples/quickstart/pipeline.py", "-p", "AccuracyThreshold=1.01")

    assert run.returncode != 0, run
    assert "Traceback" not in run.output
    execution = PipelineExecution.get(only_execution_id(project.store()))
    steps = {s.name: s for s in execution.list_steps()}
    accuracy = evaluated_accuracy(steps)
    expected = f"accuracy {accuracy} is below 1.01"

    assert execution.status == "Failed"
    assert execution.failure_reason == expected
    assert steps["AccuracyGate"].status == "Succeeded"
    assert steps["Summarize"].status == "Skipped"
    assert steps["TooInaccurate"].status == "Failed"
    assert steps["TooInaccurate"].failure_reason == expected
    assert expected in " ".join(run.stdout.split()), run

    described = cli("executions", "describe", execution.id)
    assert described.returncode == 0, described
    assert expected in described.stdout
    assert re.search(r"AccuracyThreshold:\s*1\.01\b", described.stdout), described
