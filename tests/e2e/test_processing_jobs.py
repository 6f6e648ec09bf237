"""Processing steps: a script in a fresh job directory, staged inputs, stored outputs, env, source_dir, expressions."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

INSPECT = """
    import json, os, sys
    from pathlib import Path

    def listing(folder):
        return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*") if p.is_file())

    report = {
        "cwd": os.getcwd(),
        "argv": sys.argv[1:],
        "env": {k: v for k, v in os.environ.items() if k.startswith("MY_")},
        "inputs": {name: listing(name) for name in ("raw", "config", "upstream") if Path(name).exists()},
        "config": Path("config/settings.json").read_text() if Path("config/settings.json").exists() else None,
    }
    Path("report").mkdir(exist_ok=True)
    Path("report/report.json").write_text(json.dumps(report))
    Path("leftover.txt").write_text("not an output")
"""

JOB_PIPELINE = """
    from forgeline.workflow import (
        ExecutionVariables, Format, Join, ParameterInteger, ParameterString, Pipeline, ProcessingInput,
        ProcessingOutput, ProcessingStep,
    )

    dataset = ParameterString("Dataset", default_value="data/raw")
    config_name = ParameterString("ConfigName", default_value="settings")
    epochs = ParameterInteger("Epochs", default_value=3)

    first = ProcessingStep(
        name="First", code="inspect_job.py",
        inputs=[ProcessingInput(source=dataset, destination="raw"),
                ProcessingInput(source=Join(on="", values=["conf/", config_name, ".json"]), destination="config")],
        outputs=[ProcessingOutput(output_name="report", source="report")],
        arguments=["--run", ExecutionVariables.EXECUTION_ID,
                   "--tag", Format("{}-e{}", ExecutionVariables.PIPELINE_NAME, epochs),
                   "--joined", Join(on=",", values=[epochs, "x", 1.5, True])],
        env={"MY_EXECUTION": ExecutionVariables.EXECUTION_ID,
             "MY_PIPELINE": ExecutionVariables.PIPELINE_NAME,
             "MY_START": ExecutionVariables.START_DATETIME,
             "MY_LABEL": Format("{}/{}", dataset, epochs),
             "MY_PLAIN": "plain value"},
    )
    second = ProcessingStep(
        name="Second", code="inspect_job.py",
        inputs=[ProcessingInput(source=first.properties.outputs["report"], destination="upstream")],
        outputs=[ProcessingOutput(output_name="report", source="report")],
    )
    pipeline = Pipeline(name="jobs", parameters=[dataset, config_name, epochs], steps=[first, second])
"""


def report_of(project, finished, step: str) -> dict:
    return json.loads(project.read_output(finished.steps[step].outputs["report"], "report.json"))


def job_project(project):
    project.write("inspect_job.py", INSPECT)
    project.write("data/raw/part-0.csv", "a,b\n1,2\n")
    project.write("data/raw/nested/part-1.csv", "a,b\n3,4\n")
    project.write("conf/settings.json", '{"lr": 0.1}')
    project.write("pipeline.py", JOB_PIPELINE)
    return project


def test_a_script_runs_in_a_fresh_job_directory_with_its_inputs_staged(project):
    job_project(project)

    finished = project.run()

    assert finished.status == "Succeeded", finished.failure_reason
    first, second = report_of(project, finished, "First"), report_of(project, finished, "Second")
    assert first["cwd"] != second["cwd"]
    for report in (first, second):
        cwd = Path(report["cwd"])
        assert cwd != project.root and project.root not in cwd.parents
    assert first["inputs"]["raw"] == ["nested/part-1.csv", "part-0.csv"]
    assert first["inputs"]["config"] == ["settings.json"]
    assert json.loads(first["config"]) == {"lr": 0.1}
    assert second["inputs"]["upstream"] == ["report.json"]
    # Only the declared output folder is stored.
    artifacts = project.artifacts()
    stored = finished.steps["First"].outputs["report"]
    assert artifacts.exists(stored.rstrip("/") + "/report.json")
    assert not artifacts.exists(stored.rstrip("/") + "/leftover.txt")
    # The user's project is left as it was.
    assert not (project.root / "report").exists() and not (project.root / "leftover.txt").exists()


def test_execution_variables_format_and_join_reach_arguments_and_env(project):
    job_project(project)

    finished = project.run(parameters={"Epochs": 12})

    assert finished.status == "Succeeded", finished.failure_reason
    execution = finished.execution
    report = report_of(project, finished, "First")
    assert report["argv"] == ["--run", execution.id, "--tag", "jobs-e12", "--joined", "12,x,1.5,true"]
    env = report["env"]
    assert env["MY_EXECUTION"] == execution.id
    assert env["MY_PIPELINE"] == "jobs"
    assert env["MY_LABEL"] == "data/raw/12"
    assert env["MY_PLAIN"] == "plain value"
    started = datetime.fromisoformat(env["MY_START"])
    assert started.tzinfo is not None
    assert started == execution.record().started_at  # the execution's own start, to the microsecond
    # Only the step that declares them sees them.
    assert report_of(project, finished, "Second")["env"] == {}


def test_step_env_vars_reach_a_cli_run_too(project, cli):
    job_project(project)

    run = cli("run", "pipeline.py", "-p", "Epochs=4", cwd=project.root)

    assert run.returncode == 0, run
    [record] = project.store().list_executions()
    first = {s.name: s for s in project.store().list_step_runs(record.id)}["First"]
    report = json.loads(project.read_output(first.outputs["report"], "report.json"))
    assert report["env"]["MY_EXECUTION"] == record.id
    assert report["argv"][3] == "jobs-e4"


SOURCE_DIR_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingOutput, ProcessingStep

    train = ProcessingStep(name="Train", code="jobs/train.py", source_dir="src",
                           outputs=[ProcessingOutput(output_name="model", source="model")])
    pipeline = Pipeline(name="packaged", steps=[train])
"""

SOURCE_DIR_TRAIN = """
    import json
    from pathlib import Path

    from mylib.features import scale  # a module at the top of source_dir

    defaults = json.loads((Path(__file__).parent.parent / "defaults.json").read_text())
    Path("model/model.json").write_text(json.dumps({"scaled": scale(defaults["value"])}))
"""


def test_source_dir_travels_with_the_script(project):
    project.write("src/mylib/__init__.py", "")
    project.write("src/mylib/features.py", "def scale(x):\n    return x * 10\n")
    project.write("src/defaults.json", '{"value": 4}')
    project.write("src/jobs/train.py", SOURCE_DIR_TRAIN)
    project.write("pipeline.py", SOURCE_DIR_PIPELINE)

    finished = project.run()

    assert finished.status == "Succeeded", finished.failure_reason
    model = json.loads(project.read_output(finished.steps["Train"].outputs["model"], "model.json"))
    assert model == {"scaled": 40}


DEPENDS_ON_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingStep

    first = ProcessingStep(name="CreateTable", code="slow.py")
    second = ProcessingStep(name="FillTable", code="noop.py", depends_on=[first])
    third = ProcessingStep(name="Index", code="noop.py", depends_on=["FillTable"])
    pipeline = Pipeline(name="ordered", steps=[third, second, first])
"""


def test_depends_on_orders_steps_without_data(project):
    project.write("slow.py", "import time\ntime.sleep(0.3)\n")
    project.write("noop.py", "print('ok')\n")
    project.write("pipeline.py", DEPENDS_ON_PIPELINE)

    finished = project.run()

    assert finished.status == "Succeeded", finished.failure_reason
    create, fill, index = (finished.steps[n] for n in ("CreateTable", "FillTable", "Index"))
    assert create.ended_at <= fill.started_at
    assert fill.ended_at <= index.started_at
