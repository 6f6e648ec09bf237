"""Whole journeys of a SageMaker user: definitions built by the real SageMaker SDK (offline, under moto) are
imported with `forgeline import sagemaker`, run end to end, and compared with the same scripts run directly."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from forgeline.jobs.sagemaker_paths import at_opt_ml

pytest.importorskip("sagemaker")
pytest.importorskip("xgboost")

HERE = Path(__file__).resolve().parents[1] / "sagemaker"


def sdk_project(kind: str, root: Path) -> Path:
    """A user's project (scripts copied) with its definition.json built by the SDK and the bucket in ./data."""
    project = root / kind
    shutil.copytree(HERE / "projects" / kind, project)
    done = subprocess.run([sys.executable, str(HERE / "make_definitions.py"), kind, str(project)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return project


def run_at_opt_ml(command: list[str], scratch: Path, env: dict[str, str] | None = None) -> str:
    """Run a script directly with ``scratch`` at /opt/ml, as SageMaker would; its stdout."""
    done = subprocess.run(at_opt_ml(command, scratch), cwd=scratch, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def write_abalone(path: Path, rows: int = 240) -> None:
    """A tiny abalone-shaped CSV: sex, seven measurements, rings (nearly linear in the measurements)."""
    rng = np.random.default_rng(3)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for _ in range(rows):
        x = rng.uniform(0.1, 1.0, 7)
        rings = 3 + 10 * x[0] + 4 * x[3] + rng.normal(0, 0.3)
        lines.append(",".join(["MFI"[rng.integers(3)], *(f"{v:.4f}" for v in x), f"{rings:.1f}"]))
    path.write_text("\n".join(lines) + "\n")


def test_abalone_example_imports_and_runs_like_sagemaker(cli, tmp_path, forgeline_home):
    project = sdk_project("abalone", tmp_path)
    write_abalone(project / "data" / "abalone" / "abalone-dataset.csv")
    s3 = ["--s3-root", "s3://my-bucket=./data"]

    check = cli("import", "sagemaker", "--check", "definition.json", "--code-root", ".", *s3, cwd=project)
    assert check.returncode == 0, check
    assert "AbaloneTrain" in check.stdout and "6 of 6 steps map" in check.stdout

    imported = cli("import", "sagemaker", "definition.json", "--code-root", ".", *s3, "--name", "abalone",
                   "--run", "--output", "abalone.forgeline.json", cwd=project, timeout=300)
    assert imported.returncode == 0, imported
    assert "imported pipeline abalone version 1" in imported.stdout

    # the preprocessing output equals the same script run directly at /opt/ml
    scratch = tmp_path / "direct"
    (scratch / "processing" / "input").mkdir(parents=True)
    for name in ("train", "validation", "test"):
        (scratch / "processing" / name).mkdir()
    shutil.copy(project / "data" / "abalone" / "abalone-dataset.csv", scratch / "processing" / "input")
    run_at_opt_ml([sys.executable, str(project / "preprocessing.py")], scratch)
    produced = list((project / "data" / "abalone").glob("*/AbaloneProcess/output/train/train.csv"))
    assert len(produced) == 1, "processing outputs land under the mapped s3://my-bucket prefix"
    assert produced[0].read_bytes() == (scratch / "processing" / "train" / "train.csv").read_bytes()

    # the evaluation (an s3:// literal destination) landed under ./data, and the gate registered the model
    evaluations = list((project / "data").glob("script-abalone-eval-*/output/evaluation/evaluation.json"))
    assert len(evaluations) == 1
    mse = json.loads(evaluations[0].read_text())["regression_metrics"]["mse"]["value"]
    assert mse <= 6.0
    from forgeline.registry.model_registry import Registry

    packages = Registry().list("AbaloneModelPackageGroup")
    assert [p.version for p in packages] == [1]
    predictions = Registry().load("AbaloneModelPackageGroup", 1).predict("0,1,0,0.5,0.5,0.5,0.5,0.5,0.5,0.5\n",
                                                                        "text/csv")
    assert 3 < float(str(predictions).split()[0]) < 20

    # the stored pipeline is an ordinary one: plan-able from the written definition
    plan = cli("plan", "abalone.forgeline.json", cwd=project)
    assert plan.returncode == 0, plan
    assert "AbaloneProcess" in plan.stdout and "AbaloneTrain" in plan.stdout
    shown = cli("pipelines", "show", "abalone", cwd=project)
    assert shown.returncode == 0 and "AbaloneEval" in shown.stdout


def test_vision_pytorch_script_mode_with_spot_checkpoints_gate_and_transform(cli, tmp_path, forgeline_home):
    project = sdk_project("vision", tmp_path)
    rng = np.random.default_rng(5)
    for name, rows in (("train", 200), ("test", 60), ("batch", 20)):
        x = rng.normal(0, 1, (rows, 4))
        y = (x[:, 0] + x[:, 1] > 0).astype(int)
        folder = project / "data" / "digits" / name
        folder.mkdir(parents=True)
        table = x if name == "batch" else np.column_stack([y, x])
        np.savetxt(folder / f"{name}.csv", table, delimiter=",", fmt="%.5f")

    imported = cli("import", "sagemaker", "definition.json", "--code-root", ".", "--s3-root",
                   "s3://my-bucket=./data", "--name", "vision", "--run", "-p", "Epochs=4", cwd=project, timeout=400)
    assert imported.returncode == 0, imported

    # the same training script run directly at /opt/ml gives the same metrics and the same predictions
    scratch = tmp_path / "direct"
    for folder in ("input/data/train", "model", "output/data", "checkpoints"):
        (scratch / folder).mkdir(parents=True)
    shutil.copy(project / "data" / "digits" / "train" / "train.csv", scratch / "input" / "data" / "train")
    direct = run_at_opt_ml(
        [sys.executable, str(project / "src" / "train.py"), "--lr", "0.5", "--epochs", "4", "--batch-size", "16"],
        scratch, {"SM_CHANNEL_TRAIN": "/opt/ml/input/data/train", "SM_MODEL_DIR": "/opt/ml/model",
                  "SM_OUTPUT_DATA_DIR": "/opt/ml/output/data"})
    from forgeline.config import Settings
    from forgeline.engine.execution import PipelineExecution
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    record = SqlMetadataStore(Settings.from_env().database_url).list_executions("vision")[0]
    execution = PipelineExecution.get(record.id)
    assert execution.status.value == "Succeeded"
    assert execution.parameters["Epochs"] == 4
    steps = {s.name: s for s in execution.list_steps()}
    assert steps["Predict"].status.value == "Succeeded" and steps["TooInaccurate"].status.value == "Skipped"
    metric_lines = [line for line in direct.splitlines() if "val_acc=" in line]
    assert len(metric_lines) == 4
    assert steps["Train"].metrics["val:acc"] == pytest.approx(float(metric_lines[-1].split("val_acc=")[1]))
    # checkpoints went to the mapped s3://my-bucket/vision/checkpoints
    assert (project / "data" / "vision" / "checkpoints" / "last.pt").is_file()

    # the user's inference code, on the directly trained model (loaded by path: another test's module of the
    # same name may already sit in sys.modules)
    loaded = importlib.util.spec_from_file_location("vision_user_inference", project / "src" / "inference.py")
    assert loaded is not None and loaded.loader is not None
    inference = importlib.util.module_from_spec(loaded)
    sys.path.insert(0, str(project / "src"))
    try:
        loaded.loader.exec_module(inference)
    finally:
        sys.path.remove(str(project / "src"))
    model = inference.model_fn(str(scratch / "model"))
    batch = (project / "data" / "digits" / "batch" / "batch.csv").read_text()
    expected = inference.output_fn(inference.predict_fn(inference.input_fn(batch, "text/csv"), model), "text/csv")
    produced = (project / "data" / "predictions" / "batch.csv.out").read_text()
    assert produced.split() == expected.split()
