"""The model registry end to end: a pipeline registers a model, which is approved, compared and loaded."""

from __future__ import annotations

import json
import pickle
import sys

import pytest

from forgeline.config import Settings
from forgeline.engine.fingerprint import Fingerprinter
from forgeline.registry import Registry

TINY = """
    class TinyModel:
        def __init__(self, weights, bias):
            self.weights, self.bias = list(weights), bias

        def predict(self, rows):
            return [sum(w * float(x) for w, x in zip(self.weights, row)) + self.bias for row in rows]
"""

TRAIN = """
    import csv, json, os, pickle, sys
    from tiny import TinyModel

    rows = [[float(v) for v in row] for row in csv.reader(open("data/train.csv"))]
    model = TinyModel([sum(column) / len(column) for column in zip(*rows)], bias=float(sys.argv[1]))
    pickle.dump(model, open("model/model.pkl", "wb"))
    json.dump({"metrics": {"accuracy": {"value": 0.5 + float(sys.argv[1])}}, "rows": len(rows)},
              open("evaluation/evaluation.json", "w"))
"""

PIPELINE = """
    from forgeline.workflow import (ExecutionVariables, Join, Model, ModelMetrics, ParameterFloat, Pipeline,
                                    ProcessingInput, ProcessingOutput, ProcessingStep, PropertyFile, RegisterModel,
                                    step)

    bias = ParameterFloat("Bias", default_value=0.5)
    evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
    train = ProcessingStep(name="Train", code="train.py", source_dir="code", arguments=[bias],
                           inputs=[ProcessingInput(source="data/train.csv", destination="data")],
                           outputs=[ProcessingOutput(output_name="model", source="model"),
                                    ProcessingOutput(output_name="evaluation", source="evaluation")],
                           property_files=[evaluation])
    register = RegisterModel(
        name="RegisterModel",
        model=Model(model_data=train.properties.outputs["model"], entry_point="inference.py", source_dir="code"),
        model_package_group_name="tiny", approval_status="PendingManualApproval",
        content_types=["application/json"], response_types=["application/json"],
        model_metrics=ModelMetrics(evaluation),
        description=Join(on=" ", values=["trained by", ExecutionVariables.EXECUTION_ID]),
    )

    @step(name="Announce")
    def announce(arn: str, version: int) -> str:
        return f"{arn} (v{version})"

    pipeline = Pipeline(name="tiny-pipeline", parameters=[bias],
                        steps=[train, register, announce(register.properties.model_package_arn,
                                                         register.properties.model_package_version)])
"""

ROWS = [[1, 2], [3, 4]]


@pytest.fixture
def tiny_project(project):
    project.write("code/tiny.py", TINY)
    project.write("code/train.py", TRAIN)
    project.write("code/inference.py", "# the default handlers serve this model\n")
    project.write("data/train.csv", "1,2\n3,4\n")
    project.write("pipeline.py", PIPELINE)
    return project


def registry() -> Registry:
    return Registry(Settings.from_env())


def test_a_pipeline_registers_a_package_with_metrics_and_lineage(tiny_project, monkeypatch):
    finished = tiny_project.run()

    assert finished.status == "Succeeded", (finished.failure_reason, finished.statuses())
    execution_id = finished.execution.id
    register, announce = finished.steps["RegisterModel"], finished.steps["Announce"]
    assert register.properties["model_package_arn"] == "tiny/1"
    assert announce.properties["Return"] == "tiny/1 (v1)"

    package = registry().describe("tiny", 1).package
    train_outputs = finished.steps["Train"].outputs
    assert package.model_data == train_outputs["model"]
    assert package.metrics == {"metrics": {"accuracy": {"value": 1.0}}, "rows": 2}
    assert package.description == f"trained by {execution_id}"
    assert package.approval_status == "PendingManualApproval"
    lineage = package.lineage
    assert (lineage["pipeline"], lineage["execution_id"], lineage["step"], lineage["model_step"]) == (
        "tiny-pipeline", execution_id, "RegisterModel", "Train")
    assert lineage["parameters"] == {"Bias": 0.5}
    data_file = str(tiny_project.root / "data" / "train.csv")
    fingerprint = Fingerprinter().fingerprint
    assert [(d["uri"], d["fingerprint"]) for d in lineage["data"]] == [(data_file, fingerprint(data_file))]
    assert lineage["model_data"]["fingerprint"] == fingerprint(train_outputs["model"])

    monkeypatch.setattr(sys, "path", list(sys.path))  # the loader puts the copied code folder on sys.path
    predictor = registry().load("tiny", 1)
    answer = json.loads(predictor.predict(json.dumps(ROWS), "application/json"))
    with open(f"{package.model_data}/model.pkl", "rb") as handle:
        direct = pickle.load(handle).predict(ROWS)  # `tiny` is importable now: the loader added the code folder
    assert answer == direct == [8.5, 18.5]


def test_each_run_is_a_new_version_and_the_code_is_a_snapshot(tiny_project, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert tiny_project.run().status == "Succeeded"
    tiny_project.write("code/inference.py", """
        import json
        def output_fn(prediction, accept):
            return json.dumps({"edited": prediction})
    """)
    second = tiny_project.run(parameters={"Bias": 1.5})
    assert second.status == "Succeeded", second.failure_reason

    models = registry()
    assert [p.version for p in models.list("tiny")] == [2, 1]
    assert json.loads(models.load("tiny", 1).predict(json.dumps(ROWS))) == [8.5, 18.5]
    assert json.loads(models.load("tiny", 2).predict(json.dumps(ROWS))) == {"edited": [9.5, 19.5]}
    comparison = {m.name: m.difference for m in models.compare("tiny", 1, 2).metrics}
    assert comparison == {"metrics.accuracy.value": 1.0, "rows": 0}

    models.approve("tiny", 1)
    models.approve("tiny", 2)
    models.reject("tiny", 2, note="label drift")
    assert models.latest_approved("tiny").version == 1


def test_concurrent_executions_register_distinct_versions(tiny_project, wait_for_end):
    pipeline = tiny_project.load()
    executions = [pipeline.start(parameters={"Bias": float(n)}) for n in range(3)]
    finished = [wait_for_end(execution) for execution in executions]

    assert [f.status for f in finished] == ["Succeeded"] * 3, [f.failure_reason for f in finished]
    packages = registry().list("tiny")
    assert sorted(p.version for p in packages) == [1, 2, 3]
    assert {p.lineage["execution_id"] for p in packages} == {e.id for e in executions}
    by_execution = {p.lineage["execution_id"]: p.arn for p in packages}
    for f in finished:
        assert f.steps["RegisterModel"].properties["model_package_arn"] == by_execution[f.execution.id]


def test_missing_model_data_fails_the_step_and_registers_nothing(project):
    project.write("inference.py", "")
    project.write("pipeline.py", """
        from forgeline.workflow import Model, Pipeline, RegisterModel

        register = RegisterModel(name="RegisterModel", model_package_group_name="tiny",
                                 model=Model(model_data="models/model.tar.gz", entry_point="inference.py"))
        pipeline = Pipeline(name="broken", steps=[register])
    """)
    finished = project.run()

    assert finished.status == "Failed"
    reason = finished.steps["RegisterModel"].failure_reason
    assert "model_data" in reason and "models/model.tar.gz does not exist" in reason, reason
    assert registry().groups() == []
    assert not (project.root.parent / "forgeline-home" / "artifacts" / "model-packages").exists()


def test_latest_approved_is_resolved_when_a_step_runs(tiny_project):
    assert tiny_project.run().status == "Succeeded"
    registry().approve("tiny", 1)
    tiny_project.write("use.py", "import sys\nprint('using', sys.argv[1], sys.argv[2])\n")
    tiny_project.write("use_pipeline.py", """
        from forgeline.workflow import ModelPackage, Pipeline, ProcessingInput, ProcessingStep

        latest = ModelPackage.latest_approved("tiny")
        use = ProcessingStep(name="Use", code="use.py", arguments=[latest.arn, latest],
                             inputs=[ProcessingInput(source=latest, destination="model")])
        pipeline = Pipeline(name="consumer", steps=[use])
    """)
    finished = tiny_project.run("use_pipeline.py")
    assert finished.status == "Succeeded", finished.failure_reason
