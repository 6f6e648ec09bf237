"""The importer on definitions the SDK wrote: the step-by-step check, refusals naming step and kind, Lambda
handlers, S3 roots, and the round trip of forgeline's own definitions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.sagemaker.importer import check_definition, import_definition
from forgeline.workflow.pipeline import Pipeline

pytest.importorskip("sagemaker")

HERE = Path(__file__).resolve().parent


def sdk_project(kind: str, root: Path) -> Path:
    """A project folder with the SDK's definition.json of pipeline ``kind`` and the bucket in ./data."""
    project = root / kind
    shutil.copytree(HERE / "projects" / kind, project)
    done = subprocess.run([sys.executable, str(HERE / "make_definitions.py"), kind, str(project)],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return project


@pytest.fixture(scope="module")
def unmappable_doc(tmp_path_factory) -> dict:
    """The SDK's definition with a custom image and an EMR step, plus Clarify and QualityCheck steps."""
    project = sdk_project("unmappable", tmp_path_factory.mktemp("sdk"))
    doc = json.loads((project / "definition.json").read_text())
    doc["Steps"] += [{"Name": "Bias", "Type": "ClarifyCheck", "Arguments": {}},
                     {"Name": "DataQuality", "Type": "QualityCheck", "Arguments": {}}]
    return {"doc": doc, "project": project}


def test_check_names_every_step_that_cannot_map_with_its_kind(unmappable_doc):
    project = unmappable_doc["project"]
    reports = {r.name: r for r in check_definition(unmappable_doc["doc"], code_root=str(project),
                                                   s3_map={"s3://my-bucket": str(project / "data")})}
    assert {name: r.kind for name, r in reports.items()} == {
        "OwnImage": "Processing", "SparkJob": "EMR", "Bias": "ClarifyCheck", "DataQuality": "QualityCheck"}
    assert not any(r.maps for r in reports.values())
    assert "our-own:latest" in reports["OwnImage"].detail and "--image" in reports["OwnImage"].detail
    assert "EMR" in reports["SparkJob"].detail


def test_import_refuses_in_one_line_naming_each_step(unmappable_doc):
    project = unmappable_doc["project"]
    with pytest.raises(PipelineDefinitionError) as refused:
        import_definition(unmappable_doc["doc"], code_root=str(project), s3_map={"s3://my-bucket": "data"})
    message = str(refused.value)
    assert "\n" not in message
    for part in ("'OwnImage' (Processing)", "'SparkJob' (EMR)", "'Bias' (ClarifyCheck)", "'DataQuality' (QualityCheck)"):
        assert part in message


def test_a_custom_image_maps_once_the_table_has_a_row_for_it(unmappable_doc):
    project = unmappable_doc["project"]
    doc = dict(unmappable_doc["doc"], Steps=unmappable_doc["doc"]["Steps"][:1])
    pipeline = import_definition(doc, code_root=str(project), s3_map={"s3://my-bucket": str(project / "data")},
                                 images={"/our-own:": "local"}, name="own")
    step = pipeline.step("OwnImage")
    assert step.sagemaker_paths
    assert step.inputs[0].source == str(project / "data" / "in")  # s3://my-bucket/in under the S3 root


def test_lambda_steps_call_the_named_python_handler(tmp_path, forgeline_home, monkeypatch):
    project = sdk_project("lambdas", tmp_path)
    monkeypatch.chdir(project)
    document = (project / "definition.json").read_text()
    with pytest.raises(PipelineDefinitionError, match="--lambda"):
        Pipeline.from_sagemaker(document, code_root=str(project))
    arn = "arn:aws:lambda:us-east-1:123456789012:function:check-size"
    pipeline = Pipeline.from_sagemaker(document, code_root=str(project), lambdas={arn: "handlers:check_size"},
                                       name="lambdas")
    from forgeline.engine.execution import PipelineExecution

    passed = pipeline.start()
    assert passed.wait(timeout=120).value == "Succeeded"
    assert passed.result("CheckSize") == {"verdict": "ok"}
    failed = pipeline.start(parameters={"BatchSize": 50})
    assert failed.wait(timeout=120).value == "Failed"
    assert "batch too big" in (failed.failure_reason or "")

    assert pipeline.upsert()["PipelineVersion"] == 1  # already stored by start(): the same definition
    described = pipeline.describe()
    assert described["PipelineName"] == "lambdas"
    assert json.loads(described["PipelineDefinition"]) == pipeline.to_request()
    summaries = pipeline.list_executions()["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in summaries] == [failed.id, passed.id]
    assert [s["PipelineExecutionStatus"] for s in summaries] == ["Failed", "Succeeded"]
    with pytest.raises(Exception, match="no return value|Failed|only a step that succeeded"):
        PipelineExecution.get(failed.id).result("TooBig")


def test_forgeline_definitions_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "prepare.py").write_text("print(1)\n")
    from forgeline.workflow import ProcessingInput, ProcessingOutput, ProcessingStep

    step = ProcessingStep(name="Prepare", code="prepare.py",
                          inputs=[ProcessingInput(source="data", destination="/opt/ml/processing/input")],
                          outputs=[ProcessingOutput(output_name="out", source="/opt/ml/processing/output")])
    pipeline = Pipeline(name="roundtrip", steps=[step])
    assert Pipeline.from_sagemaker(pipeline.definition()) == pipeline
    assert Pipeline.from_sagemaker(pipeline.definition().as_dict(), name="renamed").name == "renamed"
    assert [r.outcome for r in check_definition(pipeline.definition())] == ["maps"]


def test_documents_that_are_not_sdk_v2_definitions_are_refused():
    with pytest.raises(PipelineDefinitionError, match="not JSON"):
        import_definition("{nope")
    with pytest.raises(PipelineDefinitionError, match="version '2017-01-01'"):
        import_definition({"Version": "2017-01-01", "Steps": []})
    with pytest.raises(PipelineDefinitionError, match="no 'Steps'"):
        import_definition({"Version": "2020-12-01"})


@pytest.mark.parametrize("given_by", ["AWS_ENDPOINT_URL", "FORGELINE_STORAGE_OPTIONS"])
def test_unmapped_s3_uris_are_read_from_an_s3_api_endpoint(unmappable_doc, tmp_path, forgeline_home, s3_endpoint,
                                                           monkeypatch, given_by):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    if "my-bucket" not in [bucket["Name"] for bucket in client.list_buckets()["Buckets"]]:
        client.create_bucket(Bucket="my-bucket")
    if given_by == "AWS_ENDPOINT_URL":
        monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    else:  # the endpoint and keys in forgeline's setting only, none of the AWS variables
        for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("FORGELINE_STORAGE_OPTIONS", json.dumps(
            {"s3": {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}}))
    client.put_object(Bucket="my-bucket", Key="in/rows.csv", Body=b"1\n2\n3\n4\n")
    code = tmp_path / "code"
    code.mkdir()
    (code / "preprocessing.py").write_text(
        "import glob\nrows = [l for p in glob.glob('/opt/ml/processing/input/*.csv') for l in open(p)]\n"
        "print(f'rows={len(rows)}')\n")
    monkeypatch.chdir(tmp_path)
    doc = dict(unmappable_doc["doc"], Steps=unmappable_doc["doc"]["Steps"][:1])
    pipeline = import_definition(doc, code_root=str(code), images={"/our-own:": "local"}, name="from-s3")
    assert pipeline.step("OwnImage").inputs[0].source == "s3://my-bucket/in"  # no S3 root: S3 itself
    execution = pipeline.start()
    assert execution.wait(timeout=120).value == "Succeeded", execution.failure_reason
    logs = list((forgeline_home / "logs" / execution.id / "OwnImage").glob("*.log"))
    assert "rows=4" in logs[0].read_text()
