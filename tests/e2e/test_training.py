"""Training steps in whole pipelines: script mode, metrics as properties, spot restarts, stops, `metrics`."""

from __future__ import annotations

import json
import os
import signal
import tarfile
from pathlib import Path

import typer
from typer.testing import CliRunner

from forgeline.cli.metrics import metrics

TRAIN = """
    import json, os, sys, time
    from pathlib import Path

    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    checkpoint = Path(os.environ["SM_CHECKPOINT_DIR"]) / "epoch.txt"
    start = int(checkpoint.read_text()) if checkpoint.exists() else 0
    rows = Path(os.environ["SM_CHANNEL_TRAIN"], "rows.txt").read_text().split()
    for epoch in range(start + 1, int(args["--epochs"]) + 1):
        print(f"epoch {epoch}", flush=True)
        print(f"accuracy {0.5 + epoch / 10}", flush=True)
        print(f"loss {1 / epoch}", file=sys.stderr, flush=True)
        if os.environ.get("PAUSE_AT") == str(epoch) and start == 0:  # a long epoch, killed or stopped from outside
            Path(os.environ["PID_FILE"]).write_text(f"{os.getpid()}\\n")
            time.sleep(60)
        checkpoint.with_name("epoch.tmp").write_text(str(epoch))
        os.replace(checkpoint.with_name("epoch.tmp"), checkpoint)
    Path(os.environ["SM_MODEL_DIR"], "model.json").write_text(json.dumps({"rows": len(rows), "lr": args["--lr"]}))
    Path(os.environ["SM_OUTPUT_DATA_DIR"], "done.txt").write_text(f"resumed after {start}")
"""

PIPELINE = """
    import os
    from forgeline.workflow import (
        ConditionGreaterThanOrEqualTo, ConditionStep, FailStep, ParameterFloat, ParameterInteger, Pipeline,
        ProcessingInput, ProcessingOutput, ProcessingStep, TrainingInput, TrainingStep,
    )

    epochs = ParameterInteger("Epochs", default_value=3)
    lr = ParameterFloat("LearningRate", default_value=0.1)
    prepare = ProcessingStep(name="Prepare", code="prepare.py",
                             outputs=[ProcessingOutput(output_name="train", source="out")])
    train = TrainingStep(
        name="Train", entry_point="train.py", source_dir="code",
        hyperparameters={"epochs": epochs, "lr": lr},
        inputs={"train": TrainingInput(prepare.properties.outputs["train"])},
        metric_definitions=[{"Name": "accuracy", "Regex": r"accuracy ([0-9.]+)"},
                            {"Name": "loss", "Regex": r"loss ([0-9.]+)"}],
        use_spot_instances=True, max_run=120, max_wait=300,
        environment={"PID_FILE": os.environ.get("PID_FILE", ""), "PAUSE_AT": os.environ.get("PAUSE_AT", "")},
        instance_type="ml.g5.xlarge", instance_count=2,
    )
    use = ProcessingStep(name="UseModel", code="use.py",
                         inputs=[ProcessingInput(source=train.properties.model_artifacts, destination="model")],
                         outputs=[ProcessingOutput(output_name="report", source="report")])
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionGreaterThanOrEqualTo(left=train.properties.metrics["accuracy"], right=0.75)],
        if_steps=[use],
        else_steps=[FailStep(name="TooWeak", error_message="accuracy too low")],
    )
    pipeline = Pipeline(name="training", parameters=[epochs, lr], steps=[prepare, train, gate])
"""


def write_project(project) -> None:
    project.write("prepare.py", """
        from pathlib import Path
        Path("out").mkdir(exist_ok=True)
        Path("out/rows.txt").write_text("a b c d")
    """)
    project.write("code/train.py", TRAIN)
    project.write("use.py", """
        import json, tarfile
        from pathlib import Path
        with tarfile.open("model/model.tar.gz") as archive:
            model = json.load(archive.extractfile("model.json"))
        Path("report").mkdir(exist_ok=True)
        Path("report/report.json").write_text(json.dumps(model))
    """)
    project.write("pipeline.py", PIPELINE)


def test_a_trained_model_and_its_metrics_feed_the_steps_after_it(project):
    write_project(project)
    finished = project.run(parameters={"Epochs": 3, "LearningRate": 0.05})

    assert finished.status == "Succeeded", finished.failure_reason
    assert finished.statuses() == {"Prepare": "Succeeded", "Train": "Succeeded", "Gate": "Succeeded",
                                   "UseModel": "Succeeded", "TooWeak": "Skipped"}
    train = finished.steps["Train"]
    assert train.kind == "Training"
    assert train.metrics == {"accuracy": 0.8, "loss": 1 / 3}  # final values, usable in the condition
    assert train.properties["model_artifacts"] == train.outputs["model"]
    assert train.outputs["model"].endswith("model.tar.gz")
    assert train.properties["instance_type"] == "ml.g5.xlarge" and train.properties["instance_count"] == 2
    with tarfile.open(train.outputs["model"]) as archive:
        assert json.load(archive.extractfile("model.json")) == {"rows": 4, "lr": "0.05"}
    assert project.read_output(train.outputs["output_data"], "done.txt") == "resumed after 0"
    assert json.loads(project.read_output(finished.steps["UseModel"].outputs["report"], "report.json")) == {
        "rows": 4, "lr": "0.05"}
    points = project.store().list_metric_points(finished.execution.id, "Train")
    # Each stream keeps its order; stdout and stderr lines printed at the same moment may swap places.
    assert [p.value for p in points if p.name == "accuracy"] == [0.6, 0.7, 0.8]
    assert [p.value for p in points if p.name == "loss"] == [1.0, 0.5, 1 / 3]
    assert sorted(p.seq for p in points) == [1, 2, 3, 4, 5, 6]

    # `forgeline metrics` prints the series and the final values.
    app = typer.Typer()
    app.command()(metrics)
    app.command("unused")(lambda: None)  # two commands, so the first is called by name as in forgeline
    shown = CliRunner().invoke(app, ["metrics", finished.execution.id, "Train", "--json"])
    assert shown.exit_code == 0, shown.output
    rows = [json.loads(line) for line in shown.output.splitlines()]
    assert [(r["name"], r["value"], r["seq"]) for r in rows] == [(p.name, p.value, p.seq) for p in points]
    last = CliRunner().invoke(app, ["metrics", finished.execution.id[:8], "--last"], env={"COLUMNS": "200"})
    assert last.exit_code == 0, last.output
    assert "accuracy" in last.output and "0.8" in last.output and "0.6" not in last.output


def test_a_killed_spot_training_restarts_from_its_checkpoint_within_the_same_step(project, monkeypatch,
                                                                                   wait_until, wait_for_end):
    pid_file = project.root / "train.pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    monkeypatch.setenv("PAUSE_AT", "2")
    write_project(project)
    execution = project.load().start(parameters={"Epochs": 4})
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=60,
                         what="the training script to reach epoch 2"))
    os.kill(pid, signal.SIGKILL)  # what a reclaimed spot instance or the OOM killer looks like
    finished = wait_for_end(execution, timeout=90)

    assert finished.status == "Succeeded", finished.failure_reason
    train = finished.steps["Train"]
    assert train.attempts == 2  # the restart inside the job is an attempt of its own (tests/e2e/test_spot_restarts.py)
    [interruption] = train.properties["interruptions"]
    assert interruption["reason"] == "killed by signal SIGKILL"
    assert project.read_output(train.outputs["output_data"], "done.txt") == "resumed after 1"
    interrupted, attempt = execution.list_attempts("Train")
    assert (interrupted.status.value, attempt.status.value) == ("Interrupted", "Succeeded")
    assert interrupted.log_path == attempt.log_path  # one job, one log: both starts are in it
    log = Path(attempt.log_path).read_text()
    assert [line for line in log.splitlines() if line.startswith("epoch")] == [
        "epoch 1", "epoch 2", "epoch 2", "epoch 3", "epoch 4"]
    assert "[forgeline] training was killed by signal SIGKILL" in log
    assert train.metrics["accuracy"] == 0.9


def test_stopping_an_execution_stops_its_training_job(project, monkeypatch, wait_until, wait_for_end):
    pid_file = project.root / "train.pid"
    monkeypatch.setenv("PID_FILE", str(pid_file))
    monkeypatch.setenv("PAUSE_AT", "1")
    write_project(project)
    execution = project.load().start()
    pid = int(wait_until(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=60,
                         what="the training script to start"))
    execution.stop()
    finished = wait_for_end(execution, timeout=60)

    assert finished.status == "Stopped"
    assert finished.steps["Train"].status.value == "Stopped"
    assert finished.steps["Train"].properties.get("interruptions") in (None, [])
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=15, what="the training process to end")


CACHED_PIPELINE = """
    from forgeline.workflow import CacheConfig, ParameterFloat, Pipeline, TrainingStep

    lr = ParameterFloat("LearningRate", default_value=0.1)
    train = TrainingStep(name="Train", entry_point="train.py", source_dir="code",
                         hyperparameters={"lr": lr},
                         metric_definitions=[{"Name": "loss", "Regex": r"loss ([0-9.]+)"}],
                         cache_config=CacheConfig(enable_caching=True))
    pipeline = Pipeline(name="cached-training", parameters=[lr], steps=[train])
"""


def test_a_cached_training_step_reruns_when_its_source_dir_or_hyperparameters_change(project):
    project.write("code/train.py", """
        import sys
        print("loss", 1 / float(sys.argv[2]))
    """)
    project.write("code/labels.txt", "cat dog")
    project.write("pipeline.py", CACHED_PIPELINE)

    def train_step(parameters=None):
        finished = project.run(parameters=parameters)
        assert finished.status == "Succeeded", finished.failure_reason
        return finished.steps["Train"]

    first = train_step()
    assert not first.cache_hit and first.metrics == {"loss": 10.0}
    again = train_step()
    assert again.cache_hit and again.metrics == {"loss": 10.0}  # final metric values come with the cache hit
    assert again.properties["model_artifacts"] == first.properties["model_artifacts"]
    project.write("code/labels.txt", "cat dog bird")  # not the entry point: the whole source_dir counts
    assert not train_step().cache_hit
    changed = train_step({"LearningRate": 0.5})
    assert not changed.cache_hit and changed.metrics == {"loss": 2.0}
