"""Code written against sagemaker.workflow needs only its imports changed: SageMaker's spellings in the DSL."""

from __future__ import annotations

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import (
    ConditionGreaterThanOrEqualTo,
    ConditionStep,
    FailStep,
    JsonGet,
    ParameterFloat,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    TrainingInput,
    TrainingStep,
    step,
)


def build(tmp_path, monkeypatch) -> Pipeline:
    monkeypatch.chdir(tmp_path)
    for name in ("prepare.py", "train.py", "evaluate.py"):
        (tmp_path / name).write_text("print('ok')\n")
    threshold = ParameterFloat("Threshold", default_value=0.5)
    prepare = ProcessingStep(
        name="Prepare", code="prepare.py",
        inputs=[ProcessingInput(source="data.csv", destination="/opt/ml/processing/input")],
        outputs=[ProcessingOutput(output_name="train", source="/opt/ml/processing/train")],
    )
    train = TrainingStep(
        name="Train", entry_point="train.py",
        inputs={"train": TrainingInput(prepare.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri)},
    )
    report = PropertyFile(name="Report", output_name="evaluation", path="evaluation.json")
    evaluate = ProcessingStep(
        name="Evaluate", code="evaluate.py", property_files=[report],
        inputs=[ProcessingInput(source=train.properties.ModelArtifacts.S3ModelArtifacts,
                                destination="/opt/ml/processing/model")],
        outputs=[ProcessingOutput(output_name="evaluation", source="/opt/ml/processing/evaluation")],
    )
    accuracy = JsonGet(step_name="Evaluate", property_file=report, json_path="accuracy")
    gate = ConditionStep(name="Gate", conditions=[ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold)],
                         if_steps=[], else_steps=[FailStep(name="Low", error_message="too low")])
    return Pipeline(name="spellings", parameters=[threshold], steps=[prepare, train, evaluate, gate])


def test_sagemaker_property_paths_are_aliases_of_forgeline_properties(tmp_path, monkeypatch):
    pipeline = build(tmp_path, monkeypatch)
    doc = pipeline.definition().as_dict()
    steps = {s["Name"]: s for s in doc["Steps"]}
    assert steps["Train"]["Arguments"]["InputDataConfig"][0]["DataSource"] == {"Get": "Steps.Prepare.outputs['train']"}
    assert steps["Evaluate"]["Arguments"]["Inputs"][0]["Source"] == {"Get": "Steps.Train.model_artifacts"}
    prepare = pipeline.step("Prepare")
    assert prepare.properties.outputs["train"] == prepare.properties.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri
    transform_alias = prepare.properties.TransformOutput.S3OutputPath
    assert transform_alias.path == ("output_uri",)


def test_json_get_by_step_name_and_absolute_opt_ml_paths(tmp_path, monkeypatch):
    pipeline = build(tmp_path, monkeypatch)
    gate = pipeline.step("Gate")
    left = gate.conditions[0].left
    assert left.step_name == "Evaluate" and left.property_file_name == "Report"
    prepare = pipeline.step("Prepare")
    assert prepare.sagemaker_paths and not ProcessingStep(name="Plain", code="prepare.py").sagemaker_paths
    assert Pipeline.from_definition(pipeline.definition()) == pipeline


def test_paths_outside_opt_ml_and_jsonget_without_a_step_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PipelineDefinitionError, match="under /opt/ml/"):
        ProcessingStep(name="P", code="x.py", inputs=[ProcessingInput(source="a", destination="/etc/input")])
    with pytest.raises(PipelineDefinitionError, match="under /opt/ml/"):
        ProcessingStep(name="P", code="x.py", outputs=[ProcessingOutput(output_name="o", source="/opt/ml/../etc")])
    with pytest.raises(PipelineDefinitionError, match="step= or step_name="):
        JsonGet(property_file="Report", json_path="a")
    with pytest.raises(PipelineDefinitionError, match="step= or step_name="):
        JsonGet(step="A", step_name="B", property_file="Report", json_path="a")


@step(instance_type="ml.m5.xlarge", instance_count=2)
def summarize(value: float) -> float:
    return value


def test_step_decorator_records_instance_options():
    call = summarize(1.0)
    arguments = call.step.to_request()["Arguments"]
    assert arguments["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 2}
    rebuilt = type(call.step).from_request(call.step.to_request())
    assert rebuilt.instance_type == "ml.m5.xlarge" and rebuilt.instance_count == 2
