"""TransformStep end to end: a model from a step or from the registry, predictions in order, failures and stops."""

from __future__ import annotations

import json
import os

import pytest

from forgeline.config import Settings
from forgeline.registry import Registry

INFERENCE = """
    import json, os, time
    import numpy as np

    def model_fn(model_dir):
        if os.environ.get("WORKER_PIDS"):
            os.makedirs(os.environ["WORKER_PIDS"], exist_ok=True)
            open(os.path.join(os.environ["WORKER_PIDS"], str(os.getpid())), "w").close()
        with open(os.path.join(model_dir, "weights.json")) as handle:
            return json.load(handle)

    def predict_fn(data, model):
        time.sleep(model.get("seconds_per_batch", 0))
        if (data < 0).any():
            raise ValueError(f"negative values cannot be scored: {data[data < 0][0]}")
        return (data @ np.array(model["weights"])).astype(int)
"""

FIT = """
    import json, sys
    json.dump({"weights": [float(sys.argv[1]), 0.0], "seconds_per_batch": float(sys.argv[2])},
              open("model/weights.json", "w"))
"""

PREPARE = """
    import os
    os.makedirs("inference/more", exist_ok=True)
    with open("inference/a.csv", "w") as a:
        a.writelines(f"{i},{i % 5}\\n" for i in range(3000))
    with open("inference/more/b.csv", "w") as b:
        b.writelines(f"{i},{-1 if i == {bad_row} else 1}\\n" for i in range(10_000, 10_400))
"""

COUNT = """
    import json, pathlib
    counts = {str(p.relative_to("predictions")): len(p.read_text().splitlines())
              for p in sorted(pathlib.Path("predictions").rglob("*.out"))}
    json.dump(counts, open("summary/counts.json", "w"))
"""

TRANSFORM_PIPELINE = """
    from forgeline.workflow import (Model, ParameterFloat, Pipeline, ProcessingInput, ProcessingOutput,
                                    ProcessingStep, TransformInput, TransformStep)

    weight = ParameterFloat("Weight", default_value=1.0)
    pause = ParameterFloat("SecondsPerBatch", default_value=0.0)
    prepare = ProcessingStep(name="Prepare", code="prepare.py",
                             outputs=[ProcessingOutput(output_name="inference", source="inference")])
    fit = ProcessingStep(name="Fit", code="fit.py", arguments=[weight, pause],
                         outputs=[ProcessingOutput(output_name="model", source="model")])
    predict = TransformStep(
        name="Predict",
        model=Model(model_data=fit.properties.outputs["model"], entry_point="inference.py", source_dir="code"),
        inputs=TransformInput(data=prepare.properties.outputs["inference"], content_type="text/csv",
                              split_type="Line"),
        strategy="MultiRecord", max_payload_mb=0.002, instance_count=2,
        assemble_with="Line", accept="text/csv", join_source="Input",
        env={"WORKER_PIDS": "{pids}"},
    )
    count = ProcessingStep(name="Count", code="count.py",
                           inputs=[ProcessingInput(source=predict.properties.output_uri, destination="predictions")],
                           outputs=[ProcessingOutput(output_name="summary", source="summary")])
    pipeline = Pipeline(name="scoring", parameters=[weight, pause], steps=[prepare, fit, predict, count])
"""

REGISTER_PIPELINE = """
    from forgeline.workflow import Model, ParameterFloat, Pipeline, ProcessingOutput, ProcessingStep, RegisterModel

    weight = ParameterFloat("Weight", default_value=1.0)
    fit = ProcessingStep(name="Fit", code="fit.py", arguments=[weight, 0.0],
                         outputs=[ProcessingOutput(output_name="model", source="model")])
    register = RegisterModel(
        name="Register", model_package_group_name="scorer", approval_status="Approved",
        model=Model(model_data=fit.properties.outputs["model"], entry_point="inference.py", source_dir="code"),
    )
    pipeline = Pipeline(name="train-scorer", parameters=[weight], steps=[fit, register])
"""

REGISTERED_TRANSFORM_PIPELINE = """
    from forgeline.workflow import ModelPackage, Pipeline, ProcessingOutput, ProcessingStep, TransformInput, TransformStep

    prepare = ProcessingStep(name="Prepare", code="prepare.py",
                             outputs=[ProcessingOutput(output_name="inference", source="inference")])
    data = TransformInput(data=prepare.properties.outputs["inference"])
    latest = TransformStep(name="Latest", model=ModelPackage.latest_approved("scorer"), inputs=data,
                           instance_count=2, accept="text/csv")
    pinned = TransformStep(name="Pinned", model="scorer/1", inputs=data, accept="text/csv", join_source="Input")
    pipeline = Pipeline(name="batch-scoring", steps=[prepare, latest, pinned])
"""


@pytest.fixture
def scoring(project):
    """A project whose pipeline prepares CSV files, fits a model, predicts on them and counts the predictions."""

    def make(bad_row: int = -1, pids: str = "") -> object:
        project.write("code/inference.py", INFERENCE)
        project.write("fit.py", FIT)
        project.write("prepare.py", PREPARE.replace("{bad_row}", str(bad_row)))
        project.write("count.py", COUNT)
        project.write("pipeline.py", TRANSFORM_PIPELINE.replace("{pids}", pids))
        project.write("register.py", REGISTER_PIPELINE)
        project.write("batch_scoring.py", REGISTERED_TRANSFORM_PIPELINE)
        return project

    return make


def output_lines(project, uri: str, name: str) -> list[str]:
    return project.read_output(uri, name).splitlines()


def test_predictions_line_up_with_their_input_rows_and_feed_the_next_step(scoring):
    project = scoring()
    finished = project.run(parameters={"Weight": 2.0})

    assert finished.status == "Succeeded", (finished.failure_reason, finished.statuses())
    predict = finished.steps["Predict"]
    output_uri = predict.properties["output_uri"]
    assert predict.properties["model_data"] == finished.steps["Fit"].outputs["model"]
    assert output_lines(project, output_uri, "a.csv.out") == [f"{i},{i % 5},{2 * i}" for i in range(3000)]
    assert output_lines(project, output_uri, "more/b.csv.out") == [f"{i},1,{2 * i}" for i in range(10_000, 10_400)]
    counts = json.loads(project.read_output(finished.steps["Count"].outputs["summary"], "counts.json"))
    assert counts == {"a.csv.out": 3000, "more/b.csv.out": 400}


def test_a_rejected_record_fails_the_step_with_its_file_and_line(scoring):
    project = scoring(bad_row=10_123)
    finished = project.run()

    assert finished.status == "Failed"
    statuses = finished.statuses()
    assert statuses["Predict"] == "Failed" and statuses["Count"] != "Succeeded"
    reason = finished.steps["Predict"].failure_reason
    assert "more/b.csv line 124: ValueError: negative values cannot be scored: -1" in reason, reason


def test_a_registered_model_by_latest_approved_and_by_version(scoring):
    project = scoring()
    for weight in (1.0, 3.0):
        registered = project.run("register.py", parameters={"Weight": weight})
        assert registered.status == "Succeeded", registered.failure_reason
    registry = Registry(Settings.from_env())
    registry.reject("scorer", 2)
    assert registry.latest_approved("scorer").version == 1
    third = project.run("register.py", parameters={"Weight": 3.0})
    assert third.status == "Succeeded", third.failure_reason

    finished = project.run("batch_scoring.py")

    assert finished.status == "Succeeded", (finished.failure_reason, finished.statuses())
    latest, pinned = finished.steps["Latest"], finished.steps["Pinned"]
    assert latest.properties["model_package_arn"] == "scorer/3"
    assert pinned.properties["model_package_arn"] == "scorer/1"
    assert latest.properties["model_data"] == registry.describe("scorer", 3).package.model_data
    assert output_lines(project, latest.properties["output_uri"], "a.csv.out") == [str(3 * i) for i in range(3000)]
    assert output_lines(project, pinned.properties["output_uri"], "more/b.csv.out") == [
        f"{i},1,{i}" for i in range(10_000, 10_400)]


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie is gone too
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_stopping_a_long_transform_ends_its_workers(scoring, project, wait_until):
    pid_folder = project.root / "worker-pids"  # each worker leaves its process id here once its model is loaded
    scoring(pids=str(pid_folder))
    execution = project.load().start(parameters={"SecondsPerBatch": 0.5})

    def workers_running():
        step = {s.name: s for s in execution.list_steps()}.get("Predict")
        found = sorted(pid_folder.iterdir()) if pid_folder.is_dir() else []
        return step is not None and step.status == "Executing" and len(found) == 2 and [int(p.name) for p in found]

    workers = wait_until(workers_running, timeout=60, what="two transform workers to load the model")
    assert execution.stop() in ("Stopping", "Stopped")
    assert execution.wait(timeout=60) == "Stopped"

    steps = {s.name: s for s in execution.list_steps()}
    assert steps["Predict"].status == "Stopped"
    assert steps["Count"].status in ("Skipped", "Stopped") and steps["Count"].started_at is None
    for pid in workers:
        wait_until(lambda pid=pid: process_gone(pid), timeout=10, what=f"transform worker {pid} to end")
