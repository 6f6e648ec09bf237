"""Jobs on S3 artifacts beyond the quickstart: inputs from s3:// URLs, explicit destinations, empty outputs,
cache hits across executions, and a training step's model, output data and checkpoints.

The metadata is in PostgreSQL at the same time: the production-like combination of both backends.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from forgeline.store.artifacts import ArtifactStore

from .conftest import Backend

PIPELINE = """
    import os
    from forgeline.workflow import (
        CacheConfig, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep, TrainingInput, TrainingStep,
    )

    BUCKET = os.environ["TEST_BUCKET"]
    CACHE = CacheConfig(enable_caching=True, expire_after="P30D")
    extract = ProcessingStep(
        name="Extract", code="extract.py", cache_config=CACHE,
        inputs=[ProcessingInput(source=f"s3://{BUCKET}/raw/data.csv", destination="in"),
                ProcessingInput(source=f"s3://{BUCKET}/lookup", destination="lookup")],
        outputs=[ProcessingOutput(output_name="rows", source="out"),
                 ProcessingOutput(output_name="nothing", source="empty", optional=True),
                 ProcessingOutput(output_name="copy", source="out",
                                  destination=f"s3://{BUCKET}/published/rows")])
    train = TrainingStep(
        name="Train", entry_point="train.py",
        inputs={"train": TrainingInput(extract.properties.outputs["rows"]),
                "extra": TrainingInput(extract.properties.outputs["nothing"])},
        hyperparameters={"epochs": 2})
    check = ProcessingStep(
        name="Check", code="check.py",
        inputs=[ProcessingInput(source=extract.properties.outputs["nothing"], destination="nothing"),
                ProcessingInput(source=train.properties.model_artifacts, destination="model")],
        outputs=[ProcessingOutput(output_name="report", source="report")])
    pipeline = Pipeline(name="s3jobs", steps=[extract, train, check])
"""

SCRIPTS = {
    "extract.py": """
        from pathlib import Path
        rows = Path("in/data.csv").read_text().splitlines()
        codes = sorted(p.name for p in Path("lookup").iterdir())
        Path("out/rows.txt").write_text("\\n".join(rows + codes))
        print(f"extracted {len(rows)} rows with {codes}")
    """,
    "train.py": """
        import json, os
        from pathlib import Path
        rows = Path(os.environ["SM_CHANNEL_TRAIN"], "rows.txt").read_text().split()
        extra = sorted(os.listdir(os.environ["SM_CHANNEL_EXTRA"]))
        Path(os.environ["SM_CHECKPOINT_DIR"], "epoch.txt").write_text("2")
        Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps({"rows": len(rows), "extra": extra}))
        Path(os.environ["SM_OUTPUT_DATA_DIR"], "done.txt").write_text("done")
        print("trained")
    """,
    "check.py": """
        import os, tarfile
        from pathlib import Path
        assert Path("nothing").is_dir() and not os.listdir("nothing"), os.listdir(".")
        found = sorted(str(p.relative_to("model")) for p in Path("model").rglob("*"))
        Path("report").mkdir(exist_ok=True)
        Path("report/found.txt").write_text("\\n".join(found))
        print("checked", found)
    """,
}


def _write_project(project: Any, bucket: str, monkeypatch: Any) -> None:
    for name, text in SCRIPTS.items():
        project.write(name, text)
    project.write("pipeline.py", PIPELINE)
    monkeypatch.setenv("TEST_BUCKET", bucket)


def test_s3_inputs_outputs_empty_folders_training_and_cache_hits(
    project: Any, postgres_backend: Backend, s3_backend: Backend, s3_endpoint: str, s3_bucket: str,
    monkeypatch: Any, forgeline_home: Path,
) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.put_object(Bucket=s3_bucket, Key="raw/data.csv", Body=b"a,1\nb,2\n")
    for key in ("lookup/", "lookup/eu.json", "lookup/us.json"):  # a folder made in a console, with its marker
        client.put_object(Bucket=s3_bucket, Key=key, Body=b"{}" if key.endswith(".json") else b"")
    _write_project(project, s3_bucket, monkeypatch)

    first = project.run()
    assert first.status == "Succeeded", (first.failure_reason, {n: s.failure_reason for n, s in first.steps.items()})
    root = s3_backend.env["FORGELINE_ARTIFACT_ROOT"]
    artifacts = ArtifactStore(root)
    extract = first.steps["Extract"]
    assert artifacts.read_bytes(extract.outputs["rows"] + "/rows.txt") == b"a,1\nb,2\neu.json\nus.json"
    assert extract.outputs["copy"] == f"s3://{s3_bucket}/published/rows"
    assert artifacts.read_bytes(f"s3://{s3_bucket}/published/rows/rows.txt").startswith(b"a,1")
    assert artifacts.exists(extract.outputs["nothing"]) and artifacts.list(extract.outputs["nothing"]) == []

    train = first.steps["Train"]
    model_uri = train.properties["model_artifacts"]
    assert model_uri == f"{root}/executions/{first.execution.id}/Train/model.tar.gz", train
    with tarfile.open(fileobj=io.BytesIO(artifacts.read_bytes(model_uri))) as archive:
        model = json.load(archive.extractfile("model.json"))  # type: ignore[arg-type]
    assert model == {"rows": 4, "extra": []}
    train_prefix = f"{root}/executions/{first.execution.id}/Train"
    assert artifacts.read_bytes(f"{train_prefix}/checkpoints/epoch.txt") == b"2"  # synced while training
    assert artifacts.read_bytes(f"{train_prefix}/output_data/done.txt") == b"done"
    report = first.steps["Check"].outputs["report"]
    assert artifacts.read_bytes(report + "/found.txt") == b"model.tar.gz"  # a file input lands in its folder

    second = project.run()
    assert second.status == "Succeeded", second.failure_reason
    assert second.steps["Extract"].cache_hit, second.steps["Extract"]
    assert second.steps["Extract"].outputs == extract.outputs
    assert not (forgeline_home / "forgeline.db").exists() and not (forgeline_home / "artifacts").exists()
