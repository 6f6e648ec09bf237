"""A SageMaker user's @step functions: the SDK (offline, under moto) pickles two chained functions to S3 and
writes a definition with a condition on the second's return value; forgeline imports it, runs the stored
functions, and gives the same values as calling the functions directly, where the SDK's readers expect them."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sagemaker")
cloudpickle = pytest.importorskip("cloudpickle")

HERE = Path(__file__).resolve().parents[1] / "sagemaker"


def sdk_project(root: Path) -> Path:
    """The user's project (its module copied) with definition.json built by the SDK and the bucket in ./data."""
    project = root / "functions"
    shutil.copytree(HERE / "projects" / "functions", project)
    done = subprocess.run([sys.executable, str(HERE / "make_definitions.py"), "functions", str(project)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return project


def call_directly(project: Path, count: int, label: str, scale: float) -> tuple[dict, tuple]:
    """The two functions called as plain Python (the first from the project's module, the second from the file
    that defines the pipeline), in a process of their own."""
    code = ("import json, runpy, sys; sys.path.insert(0, sys.argv[1]); import shapes\n"
            "fit_line = runpy.run_path(sys.argv[2])['fit_line']\n"
            "points = shapes.make_points(int(sys.argv[3]), 7, sys.argv[4])\n"
            "print(json.dumps([points, fit_line(points, float(sys.argv[5]))]))\n")
    done = subprocess.run([sys.executable, "-c", code, str(project), str(HERE / "make_definitions.py"), str(count),
                           label, str(scale)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    points, fitted = json.loads(done.stdout.splitlines()[-1])
    return points, tuple(fitted)


def latest_execution(pipeline: str):
    from forgeline.config import Settings
    from forgeline.engine.execution import PipelineExecution
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    record = SqlMetadataStore(Settings.from_env().database_url).list_executions(pipeline)[0]
    return PipelineExecution.get(record.id)


def test_step_functions_run_from_the_mapped_bucket_like_direct_calls(cli, tmp_path, forgeline_home, monkeypatch):
    project = sdk_project(tmp_path)
    s3 = ["--s3-root", "s3://my-bucket=./data"]
    check = cli("import", "sagemaker", "--check", "definition.json", "--code-root", ".", *s3, cwd=project)
    assert check.returncode == 0, check
    lines = {line.split()[0]: line for line in check.stdout.splitlines() if line.strip()}
    for name in ("MakePoints", "FitLine"):
        assert "Training" in lines[name] and "maps" in lines[name] and "FunctionStep" in lines[name]
    assert "4 of 4 steps map" in check.stdout

    imported = cli("import", "sagemaker", "definition.json", "--code-root", ".", *s3, "--name", "functions",
                   "--run", "-p", "Count=30", "-p", "Scale=2.0", cwd=project, timeout=300)
    assert imported.returncode == 0, imported
    execution = latest_execution("functions")
    assert execution.status.value == "Succeeded"
    steps = {s.name: s for s in execution.list_steps()}
    assert steps["TooFlat"].status.value == "Skipped"

    points, fitted = call_directly(project, 30, execution.id, 2.0)
    assert execution.result("MakePoints") == points
    assert execution.result("FitLine") == list(fitted)  # forgeline keeps a JSON return as JSON

    # where the SDK's readers look: <s3_root>/<pipeline>/<execution>/<step>/results, hash-checked payloads
    results = project / "data" / "functions" / execution.id / "FitLine" / "results"
    payload = (results / "payload.pkl").read_bytes()
    metadata = json.loads((results / "metadata.json").read_text())
    assert metadata["sha256_hash"] == hashlib.sha256(payload).hexdigest()
    assert metadata["serialization_module"] == "cloudpickle"
    assert cloudpickle.loads(payload) == fitted  # the tuple itself, as the SDK's result() gives it
    assert json.loads((results / "results.json").read_text()) == {"Result": list(fitted), "Exception": None}

    # the condition reads the second function's return: a slope below the threshold fails the execution
    from forgeline.workflow.pipeline import Pipeline

    monkeypatch.chdir(project)
    pipeline = Pipeline.from_sagemaker((project / "definition.json").read_text(), code_root=".",
                                       s3_map={"s3://my-bucket": "./data"}, name="functions")
    failed = pipeline.start(parameters={"MinSlope": 100.0, "Count": 12})
    assert failed.wait(timeout=120).value == "Failed"
    assert "slope too small" in (failed.failure_reason or "")
    direct = call_directly(project, 12, failed.id, 1.0)[1]
    assert failed.result("FitLine") == list(direct)
    assert {s.name: s.status.value for s in failed.list_steps()}["TooFlat"] == "Failed"


def test_step_functions_read_and_write_through_an_s3_endpoint(cli, tmp_path, forgeline_home, s3_endpoint,
                                                              monkeypatch):
    import boto3

    project = sdk_project(tmp_path)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    if "my-bucket" not in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="my-bucket")
    data = project / "data"
    for path in data.rglob("*"):  # aws s3 sync ./data s3://my-bucket: the stored functions, from the SDK's upload
        if path.is_file():
            client.upload_file(str(path), "my-bucket", path.relative_to(data).as_posix())
    shutil.rmtree(data)  # nothing local to fall back on
    # the endpoint and keys in forgeline's setting only, none of the AWS variables
    options = json.dumps({"s3": {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}})
    imported = cli("import", "sagemaker", "definition.json", "--code-root", ".", "--name", "functions-s3",
                   "--run", "-p", "Count=25", cwd=project, timeout=300, env={"FORGELINE_STORAGE_OPTIONS": options},
                   unset=["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"])
    assert imported.returncode == 0, imported
    execution = latest_execution("functions-s3")
    assert execution.status.value == "Succeeded"
    fitted = call_directly(project, 25, execution.id, 1.0)[1]
    assert execution.result("FitLine") == list(fitted)

    # the SDK's own reader finds the return value in the bucket and accepts its integrity check (in a process of
    # its own: here `sagemaker` is the name of the tests' package)
    code = ("import boto3, sys, json\n"
            "from sagemaker.remote_function.core.serialization import deserialize_obj_from_s3\n"
            "from sagemaker.session import Session\n"
            "session = Session(boto_session=boto3.Session(region_name='us-east-1'), default_bucket='my-bucket')\n"
            "print(json.dumps(deserialize_obj_from_s3(sagemaker_session=session, s3_uri=sys.argv[1])))\n")
    uri = f"s3://my-bucket/functions/{execution.id}/FitLine/results"
    read = subprocess.run([sys.executable, "-c", code, uri], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing",
                               "AWS_SECRET_ACCESS_KEY": "testing", "SAGEMAKER_SUPPRESS_V2_WARNING": "1"})
    assert read.returncode == 0, read.stderr[-3000:]
    assert tuple(json.loads(read.stdout.splitlines()[-1])) == fitted
