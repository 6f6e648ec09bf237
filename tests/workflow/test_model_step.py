"""RegisterModel and ModelPackage.latest_approved: definition JSON, exact round trip, and definition-time checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import (
    ExecutionVariables,
    Join,
    Model,
    ModelMetrics,
    ModelPackage,
    ParameterString,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModel,
)
from forgeline.workflow.expressions import parse_value
from forgeline.workflow.models import LatestApprovedModelPackage

EVALUATION = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")


def train_step() -> ProcessingStep:
    return ProcessingStep(name="Train", code="train.py",
                          outputs=[ProcessingOutput(output_name="model", source="model"),
                                   ProcessingOutput(output_name="evaluation", source="evaluation")],
                          property_files=[EVALUATION])


def register_step(train: ProcessingStep, **overrides: object) -> RegisterModel:
    kwargs: dict[str, object] = dict(
        name="RegisterModel",
        model=Model(model_data=train.properties.outputs["model"], entry_point="inference.py", source_dir="code"),
        model_package_group_name="digits-cnn",
        content_types=["application/json"], response_types=["application/json", "text/csv"],
        model_metrics=ModelMetrics(EVALUATION),
        description=Join(on=" ", values=["trained by", ExecutionVariables.EXECUTION_ID]),
    )
    kwargs.update(overrides)
    return RegisterModel(**kwargs)  # type: ignore[arg-type]


def test_register_model_serialises_like_sagemakers_create_model_package() -> None:
    train = train_step()
    request = register_step(train).to_request()

    assert request["Type"] == "RegisterModel"
    args = request["Arguments"]
    assert args["ModelPackageGroupName"] == "digits-cnn"
    assert args["ModelApprovalStatus"] == "PendingManualApproval"
    assert args["InferenceSpecification"] == {
        "Containers": [{"ModelDataUrl": {"Get": "Steps.Train.outputs['model']"}, "EntryPoint": "inference.py",
                        "SourceDir": "code"}],
        "SupportedContentTypes": ["application/json"],
        "SupportedResponseMIMETypes": ["application/json", "text/csv"],
    }
    assert args["ModelMetrics"] == {"PropertyFile": EVALUATION.to_request()}
    assert args["ModelPackageDescription"] == {
        "Std:Join": {"On": " ", "Values": ["trained by", {"Get": "Execution.PipelineExecutionId"}]}}
    assert "Description" not in request


def test_a_pipeline_with_register_model_round_trips_exactly() -> None:
    status = ParameterString("ApprovalStatus", default_value="PendingManualApproval")
    train = train_step()
    register = register_step(train, approval_status=status,
                             model_metrics=ModelMetrics(Join(on="/", values=[train.properties.outputs["evaluation"],
                                                                             "evaluation.json"])))
    use = ProcessingStep(name="Announce", code="announce.py",
                         arguments=[register.properties.model_package_arn, ModelPackage.latest_approved("other").version],
                         inputs=[ProcessingInput(source=ModelPackage.latest_approved("digits-cnn"), destination="m")])
    pipeline = Pipeline(name="registry", parameters=[status], steps=[train, register, use], check_files=False)

    again = Pipeline.from_definition(pipeline.definition())

    assert again == pipeline
    assert json.loads(again.definition()) == json.loads(pipeline.definition())
    assert pipeline.graph.upstream["RegisterModel"] == {"Train"}
    assert pipeline.graph.upstream["Announce"] == {"RegisterModel"}
    assert isinstance(again.step("RegisterModel"), RegisterModel)


def test_metrics_given_as_a_report_uri_round_trip() -> None:
    train = train_step()
    register = register_step(train, model_metrics=ModelMetrics("reports/evaluation.json"), description=None)
    pipeline = Pipeline(name="registry", steps=[train, register], check_files=False)
    again = Pipeline.from_definition(pipeline.definition())
    assert again == pipeline
    assert again.step("RegisterModel").to_request()["Arguments"]["ModelMetrics"] == {  # type: ignore[index]
        "ReportUri": "reports/evaluation.json"}


def test_the_micro_batching_flag_round_trips() -> None:
    train = train_step()
    register = register_step(train, accepts_batches=True)
    assert register.to_request()["Arguments"]["InferenceSpecification"]["AcceptsBatches"] is True
    again = Pipeline.from_definition(Pipeline(name="r", steps=[train, register], check_files=False).definition())
    assert again.step("RegisterModel").accepts_batches is True  # type: ignore[attr-defined]
    assert "AcceptsBatches" not in register_step(train).to_request()["Arguments"]["InferenceSpecification"]


def test_latest_approved_serialises_and_parses_back() -> None:
    latest = ModelPackage.latest_approved("digits-cnn")
    assert latest.expr == {"Std:LatestApprovedModelPackage": {"Group": "digits-cnn"}}
    assert latest.version.expr == {"Std:LatestApprovedModelPackage": {"Group": "digits-cnn", "Property": "Version"}}
    assert latest.arn.expr["Std:LatestApprovedModelPackage"]["Property"] == "Arn"
    assert latest.version.model_data == latest
    group = ParameterString("Group", default_value="digits-cnn")
    for expression in (latest, latest.version, latest.arn, ModelPackage.latest_approved(group)):
        parsed = parse_value(expression.expr)
        assert isinstance(parsed, LatestApprovedModelPackage)
        assert parsed == expression


@pytest.mark.parametrize(("overrides", "message"), [
    ({"approval_status": "Deployed"}, "invalid model approval status 'Deployed'.*PendingManualApproval, Approved"),
    ({"model_package_group_name": "no spaces"}, "invalid model package group name"),
    ({"content_types": ["json"]}, "content_types must be MIME types"),
    ({"model": "model.tar.gz"}, "model must be a Model"),
    ({"model_metrics": {"accuracy": 1}}, "model_metrics must be a ModelMetrics"),
])
def test_bad_arguments_are_refused_when_the_step_is_defined(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(PipelineDefinitionError, match=message):
        register_step(train_step(), **overrides)


def test_bad_model_and_metrics_values_are_refused() -> None:
    with pytest.raises(PipelineDefinitionError, match="needs model_data"):
        Model(model_data="")
    with pytest.raises(PipelineDefinitionError, match="source_dir 'code' needs an entry_point"):
        Model(model_data="m.pkl", source_dir="code")
    with pytest.raises(PipelineDefinitionError, match="PropertyFile or the URI"):
        ModelMetrics(42)  # type: ignore[arg-type]
    with pytest.raises(PipelineDefinitionError, match="no property 'Size'"):
        LatestApprovedModelPackage("digits-cnn", "Size")
    with pytest.raises(PipelineDefinitionError, match="invalid model package group name"):
        ModelPackage.latest_approved("a/b")


def test_the_entry_point_must_exist_when_the_pipeline_is_defined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text("")
    (tmp_path / "code").mkdir()
    train = train_step()
    with pytest.raises(PipelineDefinitionError, match="step 'RegisterModel': code file 'code/inference.py' does not exist"):
        Pipeline(name="registry", steps=[train, register_step(train)])
    (tmp_path / "code" / "inference.py").write_text("")
    Pipeline(name="registry", steps=[train, register_step(train)])


def test_register_properties_are_checked_where_they_are_used() -> None:
    train = train_step()
    register = register_step(train)
    for bad, message in ((register.properties.model_package_name, "has no property 'model_package_name'"),
                         (register.properties.model_package_arn["x"], "model_package_arn is a plain value")):
        use = ProcessingStep(name="Use", code="use.py", arguments=[bad])
        with pytest.raises(PipelineDefinitionError, match=message):
            Pipeline(name="registry", steps=[train, register, use], check_files=False)
