"""The computer-vision example: a PyTorch CNN trained on the digits images, evaluated, and gated on accuracy."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forgeline.engine.execution import PipelineExecution
from forgeline.errors import ForgelineError
from forgeline.store.artifacts import ArtifactStore

REPO_ROOT = Path(__file__).resolve().parents[2]
PIPELINE = "examples/vision/pipeline.py"
TRAIN, EVALUATE = "Train-CV-Model", "Evaluate-CV-Model"


@pytest.fixture
def vision(forgeline_home, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The vision pipeline, loaded with the repository root as the current directory."""
    monkeypatch.chdir(REPO_ROOT)
    from forgeline.engine.loader import load_pipeline

    return load_pipeline(PIPELINE)


def test_the_vision_pipeline_trains_a_cnn_then_a_stricter_rerun_fails_from_the_cache(cli, vision, wait_for_end):
    run = cli("run", PIPELINE, "-p", "NumEpoch=2", "-p", "AccuracyThreshold=0.5", "-p", "InstanceCount=3",
              timeout=120)

    assert run.returncode == 0, run
    execution = PipelineExecution.get(run.stdout.split("execution ")[-1].split()[0])
    record = execution.record()
    store, artifacts = execution.store, ArtifactStore(execution.settings.artifact_root)
    steps = {s.name: s for s in execution.list_steps()}
    assert {name: s.status.value for name, s in steps.items()} == {
        "Prepare-Digits": "Succeeded", TRAIN: "Succeeded", EVALUATE: "Succeeded", "Accuracy-Gate": "Succeeded",
        "Register-CV-Model": "Succeeded", "Summarize-Model": "Succeeded", "Model-Too-Inaccurate": "Skipped"}
    train = steps[TRAIN]
    assert set(train.metrics) == {"training_ap", "testing_ap"} and train.metrics["testing_ap"] > 0.5
    assert train.properties["instance_type"] == "ml.c5.xlarge" and train.properties["instance_count"] == 3
    points = store.list_metric_points(record.id, TRAIN, "testing_ap")
    assert len(points) == 2  # one per epoch
    with tarfile.open(train.properties["model_artifacts"]) as archive:
        assert "model.pt" in archive.getnames()
    history = json.loads(artifacts.read_bytes(train.outputs["output_data"] + "/history.json"))
    assert [h["epoch"] for h in history] == [1, 2]
    log = Path(execution.list_attempts(TRAIN)[0].log_path or "").read_text()
    assert "epoch 2/2" in log and "testing_ap" in log
    accuracy = steps[EVALUATE].properties["PropertyFiles"]["Evaluation"]["metrics"]["accuracy"]["value"]
    assert accuracy > 0.5
    summary = steps["Summarize-Model"].properties["Return"]
    assert summary == {"accuracy": accuracy, "testing_ap": train.metrics["testing_ap"],
                       "model_package": "digits-cnn/1", "run": record.id}

    # The gate passed, so the model is registered, waiting for a person's approval; it serves predictions.
    from forgeline.registry import Registry

    registry = Registry()
    package = registry.describe("digits-cnn", 1)
    assert package.package.approval_status == "PendingManualApproval"
    assert package.package.model_data == train.properties["model_artifacts"]
    with pytest.raises(ForgelineError):
        registry.latest_approved("digits-cnn")
    registry.approve("digits-cnn", 1, note="checked the confusion matrix")
    assert registry.latest_approved("digits-cnn").version == 1
    with np.load(io.BytesIO(artifacts.read_bytes(steps["Prepare-Digits"].outputs["test"] + "/test.npz"))) as test:
        images, labels = test["images"][:32], test["labels"][:32]
    answer = json.loads(registry.load("digits-cnn", 1).predict(json.dumps({"images": (images * 16).tolist()}),
                                                              "application/json"))
    right = sum(int(a == b) for a, b in zip(answer["digits"], labels.tolist()))
    assert len(answer["digits"]) == 32 and right >= 16

    # Only the threshold changes: data, model and evaluation come from the cache, and the gate fails.
    stricter = wait_for_end(vision.start(parameters={"NumEpoch": 2, "InstanceCount": 3,
                                                     "AccuracyThreshold": 1.01}), timeout=120)
    assert stricter.status == "Failed"
    assert stricter.failure_reason == f"test accuracy {accuracy} is below the threshold 1.01"
    assert stricter.statuses()["Model-Too-Inaccurate"] == "Failed"
    assert stricter.statuses()["Summarize-Model"] == "Skipped"
    assert stricter.steps[TRAIN].cache_hit and stricter.steps[TRAIN].cache_source == record.id
    assert stricter.steps[TRAIN].metrics == train.metrics
