"""The packaging example's training and inference pipelines, unchanged, on a two-node Ray cluster with artifacts on an
S3 server and metadata in PostgreSQL: the set-up of the README's PostgreSQL + S3 + Ray quick start.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Cli

pytest.importorskip("duckdb_engine", reason="the packaging example needs duckdb and duckdb-engine "
                                            "(pip install -e '.[examples]')")
import sqlalchemy as sa  # noqa: E402

pytestmark = pytest.mark.ray

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAINING = "examples/packaging/training.py"
INFERENCE = "examples/packaging/inference.py"


@pytest.fixture
def ray_cli(ray_env: dict[str, str], postgres_database_url: str) -> Cli:
    """The CLI of a user whose settings name the Ray cluster, the S3 bucket and PostgreSQL."""
    return Cli({**ray_env, "FORGELINE_DATABASE_URL": postgres_database_url})


def execution_id(run_output: str) -> str:
    found = re.search(r"execution ([0-9a-f-]{8,})", run_output)
    assert found, run_output
    return found.group(1)


@pytest.mark.timeout(900)  # two pipelines of 19 jobs on two one-CPU nodes of a shared machine
def test_training_and_monthly_inference_run_on_the_ray_cluster_with_s3_and_postgresql(ray_cli, tmp_path):
    warehouse = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    generated = subprocess.run([sys.executable, "examples/packaging/generate.py", "--warehouse", warehouse],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert generated.returncode == 0, generated.stderr

    trained = ray_cli("run", TRAINING, "-p", "PackageTypes=mailer,box", "-p", f"Warehouse={warehouse}",
                      "-p", f"NotificationDir={tmp_path / 'notifications'}", timeout=600)
    assert trained.returncode == 0, trained
    inferred = ray_cli("run", INFERENCE, "-p", "Mode=monthly", "-p", "PackageType=box", "-p",
                       f"Warehouse={warehouse}", timeout=600)
    assert inferred.returncode == 0, inferred

    engine = sa.create_engine(warehouse, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT package_type, mode, model_version FROM package_predictions"))
            predictions = [tuple(row) for row in rows]
    finally:
        engine.dispose()
    assert predictions and {p[:2] for p in predictions} == {("box", "monthly")}

    # The batch transform (instance_count=2) ran as two shards, one on each node; its log came back here.
    inference_id = execution_id(inferred.output)
    logs = ray_cli("logs", inference_id, "Predict")
    assert logs.returncode == 0, logs
    nodes = set(re.findall(r"\[shard [12]/2\] \[forgeline\] running on Ray node ([0-9a-f]+)", logs.stdout))
    assert len(nodes) == 2, logs.stdout
    assert "transformed" in logs.stdout
    # Every job of both pipelines ran on Ray and stored its outputs in the bucket, not on this machine's disk.
    described = ray_cli("executions", "describe", execution_id(trained.output), "--json")
    assert described.returncode == 0, described
    assert "s3://" in described.stdout
    train = next(step for step in json.loads(described.stdout)["steps"] if step["name"] == "Package-box-Train")
    assert train["metrics"]["train_auc"] > 0.5  # parsed on the node from the training log's lines
