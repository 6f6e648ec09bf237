"""FORGELINE_STORAGE_OPTIONS: an S3 artifact root and s3:// inputs reached through storage options alone.

The endpoint and the keys of moto's S3 server are given ONLY in FORGELINE_STORAGE_OPTIONS: the standard AWS
variables are removed, so a run that succeeds proves every process (orchestrator, job staging, @step worker,
the Python API reading results) opened S3 with those options.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from forgeline.store.artifacts import ArtifactStore

PIPELINE = """
    import os
    from forgeline.workflow import Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep, step

    BUCKET = os.environ["TEST_BUCKET"]
    extract = ProcessingStep(
        name="Extract", code="extract.py",
        inputs=[ProcessingInput(source=f"s3://{BUCKET}/raw/data.csv", destination="in")],
        outputs=[ProcessingOutput(output_name="rows", source="out"),
                 ProcessingOutput(output_name="copy", source="out", destination=f"s3://{BUCKET}/published")])
    check = ProcessingStep(
        name="Check", code="check.py",
        inputs=[ProcessingInput(source=extract.properties.outputs["rows"], destination="rows")],
        outputs=[ProcessingOutput(output_name="report", source="report")])

    @step(name="Count")
    def count(n: int) -> dict:
        return {"rows": n}

    pipeline = Pipeline(name="storageoptions", steps=[extract, check, count(2)])
"""

EXTRACT = """
    from pathlib import Path
    Path("out/rows.txt").write_text(Path("in/data.csv").read_text().upper())
"""

CHECK = """
    from pathlib import Path
    Path("report").mkdir(exist_ok=True)
    Path("report/lines.txt").write_text(str(len(Path("rows/rows.txt").read_text().splitlines())))
"""

AWS_VARIABLES = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                 "AWS_SESSION_TOKEN", "AWS_PROFILE")


def _options(endpoint: str) -> dict[str, Any]:
    return {"s3": {"endpoint_url": endpoint, "key": "testing", "secret": "testing",
                   "client_kwargs": {"region_name": "us-east-1"}}}


def test_a_run_on_s3_reaches_the_endpoint_through_storage_options_only(
    project: Any, s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, forgeline_home: Path,
) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).put_object(Bucket=s3_bucket, Key="raw/data.csv", Body=b"a,1\nb,2\n")
    root = f"s3://{s3_bucket}/forgeline"
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FORGELINE_ARTIFACT_ROOT", root)
    monkeypatch.setenv("FORGELINE_STORAGE_OPTIONS", json.dumps(_options(s3_endpoint)))
    monkeypatch.setenv("TEST_BUCKET", s3_bucket)
    project.write("extract.py", EXTRACT)
    project.write("check.py", CHECK)
    project.write("pipeline.py", PIPELINE)

    finished = project.run()

    assert finished.status == "Succeeded", (finished.failure_reason,
                                            {n: s.failure_reason for n, s in finished.steps.items()})
    artifacts = ArtifactStore(root, options_by_protocol=_options(s3_endpoint), skip_instance_cache=True)
    extract = finished.steps["Extract"]
    assert extract.outputs["rows"].startswith(root + "/")
    assert artifacts.read_bytes(extract.outputs["rows"] + "/rows.txt") == b"A,1\nB,2\n"
    assert artifacts.read_bytes(f"s3://{s3_bucket}/published/rows.txt") == b"A,1\nB,2\n"
    assert artifacts.read_bytes(finished.steps["Check"].outputs["report"] + "/lines.txt") == b"2"
    assert finished.execution.result("Count") == {"rows": 2}
    assert not (forgeline_home / "artifacts").exists()


def test_without_the_options_the_same_store_cannot_reach_the_server(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The control for the test above: with the AWS variables gone, nothing else points at the server."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    store = ArtifactStore(f"s3://{s3_bucket}/forgeline", skip_instance_cache=True,
                          config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 2})
    with pytest.raises(Exception):  # noqa: B017 - no credentials, or AWS itself unreachable: anything but success
        store.write_bytes(store.uri("x.txt"), b"x")


@pytest.mark.parametrize("value", ['[{"s3": {}}]', '{"s3": "http://x"}', '{"s3": {"secret": "hunter2"'])
def test_a_bad_value_is_one_clear_line_from_the_cli(cli: Any, value: str) -> None:
    run = cli("executions", "list", env={"FORGELINE_STORAGE_OPTIONS": value})
    assert run.returncode != 0, run
    lines = [line for line in run.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "FORGELINE_STORAGE_OPTIONS" in lines[0], run
    assert "hunter2" not in run.output and "Traceback" not in run.output, run
