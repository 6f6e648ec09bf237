"""The RegisterModel inline runner, driven directly (no orchestrator process): what it records, what it refuses."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from forgeline.config import Settings
from forgeline.engine.fingerprint import Fingerprinter
from forgeline.engine.inline import InlineContext, InlineResult, RunningPipeline, is_inline, run_inline
from forgeline.engine.registration import source_data
from forgeline.engine.resolve import ResolutionContext, resolve
from forgeline.errors import ExpressionError, ForgelineError, ModelPackageNotFoundError
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.records import StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import StepRunUpdate
from forgeline.workflow import (
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
from forgeline.workflow.models import ModelApprovalStatus

EVALUATION = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
METRICS = {"metrics": {"accuracy": {"value": 0.9}}}


@dataclass
class Harness:
    """A store, an artifact store and a project folder in which RegisterModel steps run inline."""

    tmp: Path
    settings: Settings
    store: SqlMetadataStore
    artifacts: ArtifactStore
    project: Path

    def upstream_outputs(self) -> dict[str, Any]:
        """The properties of a finished Train step whose outputs exist in the artifact store."""
        base = self.tmp / "artifacts" / "executions" / "e1" / "Train"
        (base / "model").mkdir(parents=True, exist_ok=True)
        (base / "model" / "model.pkl").write_bytes(pickle.dumps({"weights": [1, 2]}))
        (base / "evaluation").mkdir(parents=True, exist_ok=True)
        (base / "evaluation" / "evaluation.json").write_text(json.dumps(METRICS))
        return {"outputs": {"model": str(base / "model"), "evaluation": str(base / "evaluation")},
                "PropertyFiles": {"Evaluation": METRICS}}

    def run(self, pipeline: Pipeline, finished: dict[str, dict[str, Any]], step: str = "RegisterModel",
            parameters: dict[str, Any] | None = None, execution_id: str = "exec-0001") -> InlineResult:
        version = self.store.save_pipeline_version(pipeline.name, pipeline.to_request())
        if execution_id not in {e.id for e in self.store.list_executions()}:
            self.store.create_execution(execution_id=execution_id, pipeline_name=pipeline.name,
                                        pipeline_version=version.version, parameters=parameters or {},
                                        work_dir=str(self.project),
                                        steps=[(s.name, s.step_type) for s in pipeline.steps])
        for name, document in finished.items():
            outputs = document.get("outputs", {})
            properties = {k: v for k, v in document.items() if k != "outputs"}
            self.store.update_step_run(execution_id, name, StepRunUpdate(status=StepStatus.SUCCEEDED, outputs=outputs,
                                                                         properties=properties))
        resolution = ResolutionContext(execution_id, pipeline.name, datetime.now(UTC), parameters or {},
                                       step_properties=dict(finished))
        running = RunningPipeline(pipeline.name, {s.name: s for s in pipeline.steps}, pipeline.graph)
        ctx = InlineContext(self.store.get_execution(execution_id), running, self.store, self.artifacts, resolution,
                            self.settings)
        return run_inline(pipeline.step(step), ctx)

    def packages_folder(self) -> list[Path]:
        root = Path(self.artifacts.root) / "model-packages"
        return sorted(root.rglob("*")) if root.exists() else []


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'forgeline.db'}",
                        artifact_root=str(home / "artifacts"))
    project = tmp_path / "project"
    (project / "code").mkdir(parents=True)
    (project / "code" / "inference.py").write_text("def predict_fn(data, model):\n    return model['weights']\n")
    (project / "code" / "helper.py").write_text("X = 1\n")
    (project / "data").mkdir()
    (project / "data" / "train.csv").write_text("1,2\n3,4\n")
    store = SqlMetadataStore(settings.database_url)
    yield Harness(tmp_path, settings, store, ArtifactStore(settings.artifact_root), project)
    store.close()


def pipeline_with(**register: Any) -> Pipeline:
    train = ProcessingStep(name="Train", code="train.py",
                           inputs=[ProcessingInput(source="data/train.csv", destination="data")],
                           outputs=[ProcessingOutput(output_name="model", source="model"),
                                    ProcessingOutput(output_name="evaluation", source="evaluation")],
                           property_files=[EVALUATION])
    kwargs: dict[str, Any] = dict(
        name="RegisterModel",
        model=Model(model_data=train.properties.outputs["model"], entry_point="inference.py", source_dir="code"),
        model_package_group_name="digits-cnn", content_types=["application/json"],
        response_types=["application/json"], model_metrics=ModelMetrics(EVALUATION), description="first cut",
    )
    kwargs.update(register)
    return Pipeline(name="digits", parameters=[ParameterString("Status", "Approved")],
                    steps=[train, RegisterModel(**kwargs)], check_files=False)


def test_register_model_is_an_inline_step() -> None:
    assert is_inline(pipeline_with().step("RegisterModel"))


def test_registration_records_the_package_and_its_properties(harness: Harness) -> None:
    train = harness.upstream_outputs()
    result = harness.run(pipeline_with(), {"Train": train})

    assert result.properties == {
        "model_package_arn": "digits-cnn/1", "model_package_version": 1, "model_package_group_name": "digits-cnn",
        "model_approval_status": "PendingManualApproval", "model_data": train["outputs"]["model"],
        "model_package": "digits-cnn/1"}
    package = harness.store.get_model_package("digits-cnn", 1)
    assert package.metrics == METRICS
    assert (package.description, package.entry_point) == ("first cut", "inference.py")
    assert package.content_types == package.response_types == ["application/json"]
    assert sorted(p.name for p in Path(package.code_uri or "").iterdir()) == ["helper.py", "inference.py"]
    assert package.lineage["metrics_source"] == {
        "property_file": "Evaluation", "step": "Train", "uri": train["outputs"]["evaluation"] + "/evaluation.json"}
    [event] = harness.store.list_model_package_events("digits-cnn")
    assert event.from_status is None and event.actor


def test_running_the_same_step_of_the_same_execution_again_registers_nothing_new(harness: Harness) -> None:
    """A resumed execution re-runs a RegisterModel its dead orchestrator had already performed."""
    train = harness.upstream_outputs()
    first = harness.run(pipeline_with(), {"Train": train})
    again = harness.run(pipeline_with(), {"Train": train})
    other = harness.run(pipeline_with(), {"Train": train}, execution_id="exec-0002")

    assert first.properties == again.properties
    assert other.properties["model_package_version"] == 2
    assert [p.version for p in harness.store.list_model_packages("digits-cnn")] == [2, 1]


def test_lineage_names_the_execution_and_fingerprints_the_data(harness: Harness) -> None:
    train = harness.upstream_outputs()
    harness.run(pipeline_with(), {"Train": train}, parameters={"Status": "Approved"})
    lineage = harness.store.get_model_package("digits-cnn", 1).lineage
    fingerprint = Fingerprinter().fingerprint

    assert (lineage["pipeline"], lineage["pipeline_version"], lineage["execution_id"]) == ("digits", 1, "exec-0001")
    assert (lineage["step"], lineage["model_step"], lineage["parameters"]) == (
        "RegisterModel", "Train", {"Status": "Approved"})
    data_file = str(harness.project / "data" / "train.csv")
    assert lineage["data"] == [{"uri": data_file, "fingerprint": fingerprint(data_file), "step": "Train",
                                "input": "data"}]
    assert lineage["model_data"] == {"uri": train["outputs"]["model"],
                                     "fingerprint": fingerprint(train["outputs"]["model"])}
    [step] = lineage["steps"]
    assert step["name"] == "Train" and step["kind"] == "Processing"
    assert {o["name"]: o["fingerprint"] for o in step["outputs"]} == {
        name: fingerprint(uri) for name, uri in train["outputs"].items()}


def test_an_approval_status_parameter_and_a_report_uri_are_resolved(harness: Harness) -> None:
    train = harness.upstream_outputs()
    report = harness.project / "report.json"
    report.write_text('{"f1": 0.5}')
    pipeline = pipeline_with(approval_status=ParameterString("Status", "Approved"),
                             model_metrics=ModelMetrics("report.json"))
    harness.run(pipeline, {"Train": train}, parameters={"Status": "Approved"})
    package = harness.store.latest_approved_model_package("digits-cnn")
    assert (package.version, package.metrics) == (1, {"f1": 0.5})
    assert package.lineage["metrics_source"] == {"uri": str(report)}


def test_the_entry_point_alone_is_copied_without_a_source_dir(harness: Harness) -> None:
    (harness.project / "serve.py").write_text("X = 2\n")
    train = harness.upstream_outputs()
    harness.run(pipeline_with(model=Model(model_data=train["outputs"]["model"] + "/model.pkl",
                                          entry_point="serve.py"), depends_on=["Train"]), {"Train": train})
    package = harness.store.get_model_package("digits-cnn", 1)
    assert [p.name for p in Path(package.code_uri or "").iterdir()] == ["serve.py"]
    assert package.model_data.endswith("model.pkl") and package.lineage["model_step"] is None


@pytest.mark.parametrize(("change", "message"), [
    (lambda h, t: {"model": Model(model_data="missing/model.tar.gz")}, "model_data .*missing/model.tar.gz does not exist"),
    (lambda h, t: {"model": Model(model_data=t["outputs"]["model"], entry_point="nope.py", source_dir="code")},
     "entry point .*code/nope.py does not exist"),
    (lambda h, t: {"model": Model(model_data=t["outputs"]["model"], entry_point="x.py", source_dir="nowhere")},
     "source_dir .*nowhere is not a folder"),
    (lambda h, t: {"model_metrics": ModelMetrics("absent.json")}, "metrics report .*absent.json does not exist"),
    (lambda h, t: {"model_metrics": ModelMetrics("data/train.csv")}, "is not readable JSON"),
    (lambda h, t: {"approval_status": ParameterString("Status")}, "invalid model approval status 'Deployed'"),
    (lambda h, t: {"model_metrics": ModelMetrics(PropertyFile("Other", "x", "x.json"))},
     "no step of pipeline 'digits' declares property file 'Other'"),
])
def test_bad_input_fails_the_step_and_registers_nothing(harness: Harness, change: Any, message: str) -> None:
    train = harness.upstream_outputs()
    with pytest.raises(ForgelineError, match=message):
        harness.run(pipeline_with(**change(harness, train)), {"Train": train}, parameters={"Status": "Deployed"})
    assert harness.store.list_model_package_groups() == []
    assert harness.packages_folder() == []


def test_an_entry_point_that_does_not_compile_is_refused(harness: Harness) -> None:
    (harness.project / "code" / "inference.py").write_text("def model_fn(:\n")
    train = harness.upstream_outputs()
    with pytest.raises(ForgelineError, match="inference.py does not compile"):
        harness.run(pipeline_with(), {"Train": train})
    assert harness.store.list_model_package_groups() == []


def test_metrics_of_a_step_that_does_not_run_first_are_refused(harness: Harness) -> None:
    evaluate = ProcessingStep(name="Evaluate", code="e.py", outputs=[ProcessingOutput("evaluation", "evaluation")],
                              property_files=[EVALUATION])
    register = RegisterModel(name="RegisterModel", model=Model(model_data="data/train.csv"),
                             model_package_group_name="g", model_metrics=ModelMetrics(EVALUATION))
    pipeline = Pipeline(name="loose", steps=[evaluate, register], check_files=False)
    with pytest.raises(ForgelineError, match="step 'Evaluate', which does not run before it; add depends_on"):
        harness.run(pipeline, {})


def test_a_failing_store_leaves_no_code_behind(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ModelPackageNotFoundError("database said no")

    monkeypatch.setattr(harness.store, "create_model_package", refuse)
    with pytest.raises(ModelPackageNotFoundError, match="database said no"):
        harness.run(pipeline_with(), {"Train": harness.upstream_outputs()})
    assert [p for p in harness.packages_folder() if p.is_file()] == []


def test_latest_approved_resolves_through_the_registry_lookup(harness: Harness) -> None:
    train = harness.upstream_outputs()
    harness.run(pipeline_with(approval_status="Approved"), {"Train": train})
    ctx = ResolutionContext("e", "p", datetime.now(UTC), {"Group": "digits-cnn"},
                            find_latest_approved=harness.store.latest_approved_model_package)
    latest = ModelPackage.latest_approved(ParameterString("Group"))
    assert resolve(latest, ctx) == train["outputs"]["model"]
    assert (resolve(latest.version, ctx), resolve(latest.arn, ctx)) == (1, "digits-cnn/1")
    with pytest.raises(ModelPackageNotFoundError, match="no model package group 'other'"):
        resolve(ModelPackage.latest_approved("other"), ctx)


def test_latest_approved_without_a_registry_lookup_says_so() -> None:
    ctx = ResolutionContext("e", "p", datetime.now(UTC), {})
    with pytest.raises(ExpressionError, match=r"ModelPackage.latest_approved\('digits-cnn'\) needs the model registry"):
        resolve(ModelPackage.latest_approved("digits-cnn"), ctx)


def test_upstream_and_source_data_helpers() -> None:
    pipeline = pipeline_with()
    assert pipeline.graph.ancestors("RegisterModel") == {"Train"}
    steps = [{"name": "A", "inputs": [{"name": "raw", "uri": "/d/raw.csv", "fingerprint": "f1"}],
              "outputs": [{"name": "out", "uri": "/a/out"}]},
             {"name": "B", "inputs": [{"name": "x", "uri": "/a/out/train.csv", "fingerprint": "f2"},
                                      {"name": "raw", "uri": "/d/raw.csv", "fingerprint": "f1"}], "outputs": []}]
    assert source_data(steps) == [{"uri": "/d/raw.csv", "fingerprint": "f1", "step": "A", "input": "raw"}]
    assert ModelApprovalStatus("Approved") is ModelApprovalStatus.APPROVED
