"""Checkpoints on Ray as a user meets them: a training job whose Ray node is lost mid-job (a reclaimed spot machine)
is retried by its RetryPolicy on the node that lives, and that attempt starts from the last checkpoint the lost
node uploaded to the artifact store (S3), not from epoch one and not from any node's disk."""

from __future__ import annotations

import re
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import Cli
from e2e.test_ray_faults import (
    DEADLINE_SECONDS,
    Blocker,
    describe,
    lose_the_second_node_once,
    only_execution,
    start_run,
    wait_for,
)
from executors.ray_fixtures import RayCluster

pytestmark = pytest.mark.ray
pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

TRAIN = """
import os, pathlib, sys, time
markers = pathlib.Path(sys.argv[sys.argv.index("--markers") + 1])
checkpoint = pathlib.Path(os.environ["SM_CHECKPOINT_DIR"]) / "epoch.txt"
start = int(checkpoint.read_text()) if checkpoint.exists() else 0
print(f"starting at epoch {start + 1}", flush=True)
for epoch in range(start + 1, 5):
    print(f"epoch {epoch} done", flush=True)
    checkpoint.with_name("epoch.tmp").write_text(str(epoch))
    os.replace(checkpoint.with_name("epoch.tmp"), checkpoint)  # never seen half written
    if epoch == 2 and start == 0:  # the first attempt holds here until its node is lost
        (markers / "held").write_text(str(os.getpid()))
        time.sleep(600)
pathlib.Path(os.environ["SM_MODEL_DIR"], "model.txt").write_text(f"trained from epoch {start + 1}")
"""
PIPELINE = """
from forgeline.workflow import Pipeline, RetryPolicy, TrainingStep
train = TrainingStep(name="Train", entry_point="train.py", hyperparameters={{"markers": {markers!r}}},
                     retry_policies=[RetryPolicy(on=["InfrastructureError"], max_attempts=2, interval_seconds=0)])
pipeline = Pipeline(name="checkpoints-on-ray", steps=[train])
"""


def stored_checkpoint(ray_env: dict[str, str], bucket: str, execution_id: str) -> str | None:
    """The epoch in the Train step's checkpoint as stored in the S3 bucket, or None while there is none."""
    import json

    import boto3

    options = json.loads(ray_env["FORGELINE_STORAGE_OPTIONS"])["s3"]
    s3 = boto3.client("s3", endpoint_url=options["endpoint_url"], aws_access_key_id="testing",
                      aws_secret_access_key="testing", region_name="us-east-1")
    key = f"forgeline/executions/{execution_id}/Train/checkpoints/epoch.txt"
    try:
        return str(s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
    except s3.exceptions.NoSuchKey:
        return None


def test_a_training_job_whose_node_is_lost_is_retried_elsewhere_from_its_last_checkpoint_on_s3(
        ray_cluster: RayCluster, ray_env: dict[str, str], s3_bucket: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    (project / "train.py").write_text(TRAIN)
    (project / "pipeline.py").write_text(textwrap.dedent(PIPELINE.format(markers=str(markers))))
    cli = Cli(ray_env)
    blocker = Blocker(ray_cluster)  # the head is full: the first attempt lands on the second node
    run: subprocess.Popen[str] = start_run(ray_env, project)
    execution_ids: list[str] = []

    def epoch_2_on_s3() -> None:
        wait_for(markers / "held", "the first attempt to checkpoint epoch 2 on the second node")
        execution_ids.append(only_execution(cli, project))
        deadline = time.monotonic() + DEADLINE_SECONDS
        while stored_checkpoint(ray_env, s3_bucket, execution_ids[0]) != "2":  # uploaded by the node's sync
            assert time.monotonic() < deadline, "the checkpoint of epoch 2 never reached S3"
            time.sleep(0.2)

    output = lose_the_second_node_once(ray_cluster, blocker, run, epoch_2_on_s3)
    [execution_id] = execution_ids
    assert run.returncode == 0, output
    execution = describe(cli, execution_id, project)
    attempts = [a for a in execution["attempts"] if a["step_name"] == "Train"]
    assert [(a["status"], a["failure_kind"]) for a in attempts] == [("Failed", "InfrastructureError"),
                                                                   ("Succeeded", None)], attempts
    first = cli("logs", execution_id, "Train", "--attempt", "1", cwd=project).stdout
    second = cli("logs", execution_id, "Train", "--attempt", "2", cwd=project).stdout
    assert "starting at epoch 1" in first and "epoch 2 done" in first, first
    assert re.search(r"restored 1 checkpoint file\(s\) from s3://\S+/Train/checkpoints", second), second
    assert "starting at epoch 3" in second and "epoch 4 done" in second, second
    assert "epoch 1 done" not in second and "epoch 2 done" not in second, second
    nodes = [re.findall(r"running on Ray node (\w+)", log) for log in (first, second)]
    assert nodes[0] and nodes[1] and nodes[0] != nodes[1], nodes  # the retry ran on the node that lives
    assert stored_checkpoint(ray_env, s3_bucket, execution_id) == "4"


def test_checkpoints_in_a_local_folder_on_a_cluster_of_two_nodes_are_refused_in_one_line(
        ray_env: dict[str, str], tmp_path: Path) -> None:
    project = tmp_path / "local-checkpoints"
    project.mkdir()
    (project / "train.py").write_text("print('never')\n")
    (project / "pipeline.py").write_text(textwrap.dedent("""
        from forgeline.workflow import Pipeline, TrainingStep
        train = TrainingStep(name="Train", entry_point="train.py", checkpoint_uri="checkpoints")
        pipeline = Pipeline(name="local-checkpoints", steps=[train])
    """))
    cli = Cli(ray_env)
    done = cli("run", "pipeline.py", cwd=project, timeout=DEADLINE_SECONDS)
    assert done.returncode == 1, done
    assert (f"step 'Train' keeps its checkpoints in {project / 'checkpoints'}, a local folder, but the Ray cluster "
            "has 2 nodes: a retry on another node could not restore them; set checkpoint_uri to storage every node "
            "reaches (e.g. s3://bucket/checkpoints) or leave it unset (the artifact store)"
            ) in " ".join(done.output.split()), done
    assert "Traceback" not in done.output
    logs = cli("logs", only_execution(cli, project), "Train", cwd=project)
    assert "never" not in logs.stdout, logs
