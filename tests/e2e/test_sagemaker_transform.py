"""A SageMaker batch transform whose instance count is a pipeline parameter (built by the real SDK, offline under
moto): imported, it runs with as many workers as the run's parameter says, and predicts what the user's
inference code predicts when called directly; a count that is not a positive integer fails the step plainly."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

pytest.importorskip("sagemaker")
np = pytest.importorskip("numpy")

HERE = Path(__file__).resolve().parents[1] / "sagemaker"


@pytest.fixture
def transform_project(tmp_path) -> Path:
    """The SDK's definition (a Model step and a Transform step), the model archive and rows in ./data."""
    project = tmp_path / "transform"
    shutil.copytree(HERE / "projects" / "transform", project)
    done = subprocess.run([sys.executable, str(HERE / "make_definitions.py"), "transform", str(project)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    (project / "data" / "model").mkdir(parents=True)
    weights = project / "weights.json"
    weights.write_text(json.dumps({"weights": [0.5, -2.0, 1.0]}))
    with tarfile.open(project / "data" / "model" / "model.tar.gz", "w:gz") as archive:
        archive.add(weights, arcname="weights.json")
    rows = project / "data" / "rows"
    rows.mkdir(parents=True)
    rng = random.Random(4)
    (rows / "rows.csv").write_text("".join(f"{rng.random():.3f},{rng.random():.3f},{rng.random():.3f}\n"
                                           for _ in range(400)))
    return project


def step_log(home: Path, execution_id: str, step: str) -> str:
    return "".join(p.read_text() for p in sorted((home / "logs" / execution_id / step).glob("*.log")))


def test_transform_instance_count_parameter_sets_the_workers_at_run_time(cli, transform_project, forgeline_home):
    s3 = ["--s3-root", "s3://my-bucket=./data"]
    imported = cli("import", "sagemaker", "definition.json", "--code-root", ".", *s3, "--name", "scoring",
                   "--run", "-p", "Workers=3", cwd=transform_project, timeout=300)
    assert imported.returncode == 0, imported
    from forgeline.config import Settings
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    store = SqlMetadataStore(Settings.from_env().database_url)
    run = store.list_executions("scoring")[0]
    assert "with 3 worker(s)" in step_log(forgeline_home, run.id, "Score")

    loaded = importlib.util.spec_from_file_location("transform_user_inference", transform_project / "inference.py")
    assert loaded is not None and loaded.loader is not None
    inference = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(inference)
    model = inference.model_fn(str(transform_project))  # weights.json beside the archive
    body = (transform_project / "data" / "rows" / "rows.csv").read_text()
    expected = inference.output_fn(inference.predict_fn(inference.input_fn(body, "text/csv"), model), "text/csv")
    assert (transform_project / "data" / "scores" / "rows.csv.out").read_text().split() == expected.split()

    # the same stored definition, another value: checked once the run gives it
    zero = cli("import", "sagemaker", "definition.json", "--code-root", ".", *s3, "--name", "scoring",
               "--run", "-p", "Workers=0", cwd=transform_project, timeout=300)
    assert zero.returncode != 0
    failed = store.list_executions("scoring")[0]
    assert failed.id != run.id and failed.status.value == "Failed"
    assert "instance_count must be a positive integer, got 0" in (failed.failure_reason or "") + zero.output
