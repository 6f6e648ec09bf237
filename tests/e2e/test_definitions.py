"""The definition document: SageMaker's expression forms, an exact round trip, versions stored on start."""

from __future__ import annotations

import json
import re

import pytest

from forgeline.workflow import Pipeline


def steps_by_name(doc: dict) -> dict:
    found = {}

    def add(steps):
        for s in steps:
            found[s["Name"]] = s
            add(s.get("Arguments", {}).get("IfSteps", []))
            add(s.get("Arguments", {}).get("ElseSteps", []))

    add(doc["Steps"])
    return found


def test_the_quickstart_definition_uses_sagemaker_expression_forms(quickstart):
    doc = quickstart.definition()

    assert isinstance(doc, str)
    assert json.loads(doc)["Name"] == "quickstart"
    assert doc["Name"] == "quickstart"
    assert isinstance(doc["Steps"], list)
    assert {p["Name"]: p["Type"] for p in doc["Parameters"]} == {
        "InputData": "String", "TrainRatio": "Float", "Seed": "Integer", "AccuracyThreshold": "Float"}
    assert {p["Name"]: p.get("DefaultValue") for p in doc["Parameters"]}["TrainRatio"] == 0.8

    steps = steps_by_name(json.loads(doc))
    assert set(steps) == {"Prepare", "Fit", "Evaluate", "AccuracyGate", "Summarize", "TooInaccurate"}
    prepare = steps["Prepare"]["Arguments"]
    assert {"Get": "Parameters.TrainRatio"} in prepare["Arguments"]
    assert {"Get": "Parameters.Seed"} in prepare["Arguments"]
    fit_source = steps["Fit"]["Arguments"]["Inputs"][0]["Source"]
    assert list(fit_source) == ["Get"], fit_source
    assert fit_source["Get"].startswith("Steps.Prepare.") and "'train'" in fit_source["Get"], fit_source

    [condition] = steps["AccuracyGate"]["Arguments"]["Conditions"]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["RightValue"] == {"Get": "Parameters.AccuracyThreshold"}
    json_get = condition["LeftValue"]["Std:JsonGet"]
    assert json_get["Path"] == "metrics.accuracy.value"
    assert json_get["PropertyFile"] == {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"}
    assert steps["Evaluate"]["PropertyFiles"] == [
        {"PropertyFileName": "Evaluation", "OutputName": "evaluation", "FilePath": "evaluation.json"}]

    message = steps["TooInaccurate"]["Arguments"]["ErrorMessage"]["Std:Join"]
    assert message["On"] == " "
    assert message["Values"][0] == "accuracy" and message["Values"][2] == "is below"
    assert message["Values"][3] == {"Get": "Parameters.AccuracyThreshold"}
    assert "Std:JsonGet" in message["Values"][1]
    assert {"Get": "Execution.PipelineExecutionId"} in steps["Summarize"]["Arguments"]["Args"]


def test_the_quickstart_definition_round_trips(quickstart):
    doc = quickstart.definition()

    assert Pipeline.from_definition(doc) == quickstart
    assert Pipeline.from_definition(json.loads(doc)) == quickstart
    assert Pipeline.from_definition(doc.as_dict()) == quickstart
    assert Pipeline.from_definition(doc).definition() == doc

    changed = json.loads(doc)
    changed["Parameters"][1]["DefaultValue"] = 0.6
    assert Pipeline.from_definition(changed) != quickstart


EVERYTHING_PIPELINE = """
    from forgeline.workflow import (
        CacheConfig, ConditionEquals, ConditionGreaterThan, ConditionIn, ConditionLessThanOrEqualTo,
        ConditionNot, ConditionOr, ConditionStep, ExecutionVariables, FailStep, Format, Join, JsonGet,
        ParallelismConfiguration, ParameterBoolean, ParameterFloat, ParameterInteger, ParameterString,
        Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep, PropertyFile, RetryPolicy, step,
    )

    flag = ParameterBoolean("Flag", default_value=True)
    count = ParameterInteger("Count", default_value=2, enum_values=[1, 2, 3])
    rate = ParameterFloat("Rate", default_value=0.1)
    name = ParameterString("Name", default_value="x")

    report = PropertyFile(name="Report", output_name="out", path="r.json")
    first = ProcessingStep(
        name="First", code="noop.py", source_dir=None,
        inputs=[ProcessingInput(source=Join(on="/", values=["data", name]), destination="in", input_name="data")],
        outputs=[ProcessingOutput(output_name="out", source="out")],
        arguments=["--rate", rate, "--tag", Format("{}-{}", ExecutionVariables.PIPELINE_NAME, count)],
        env={"START": ExecutionVariables.START_DATETIME},
        property_files=[report],
        cache_config=CacheConfig(enable_caching=True, expire_after="P1D"),
        retry_policies=[RetryPolicy(max_attempts=2)],
        display_name="The first", description="does things",
    )

    @step(name="Compute")
    def compute(a, b):
        return {"sum": a + b}

    total = compute(JsonGet(step=first, property_file=report, json_path="values[0].n"), count)
    gate = ConditionStep(
        name="Gate",
        conditions=[
            ConditionOr(conditions=[ConditionGreaterThan(left=total["sum"], right=1),
                                    ConditionNot(expression=ConditionEquals(left=flag, right=True))]),
            ConditionIn(value=name, in_values=["x", "y"]),
            ConditionLessThanOrEqualTo(left=rate, right=0.5),
        ],
        if_steps=[ProcessingStep(name="Then", code="noop.py", depends_on=[first])],
        else_steps=[FailStep(name="Else", error_message=Format("sum {} too small", total["sum"]))],
    )
    pipeline = Pipeline(name="everything", parameters=[flag, count, rate, name], steps=[first, gate],
                        parallelism_config=ParallelismConfiguration(max_parallel_steps=3),
                        description="every kind of value")
"""


def test_a_pipeline_with_every_kind_of_value_round_trips(project):
    project.write("noop.py", "print('ok')\n")
    project.write("pipeline.py", EVERYTHING_PIPELINE)
    pipeline = project.load()

    doc = pipeline.definition()
    rebuilt = Pipeline.from_definition(doc)

    assert rebuilt == pipeline
    assert Pipeline.from_definition(json.loads(doc)) == pipeline
    assert json.loads(rebuilt.definition()) == json.loads(doc)
    assert doc["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 3}
    assert {s.name for s in rebuilt.steps} == {"First", "Compute", "Gate", "Then", "Else"}


VERSIONED_PIPELINE = """
    from forgeline.workflow import ParameterString, Pipeline, ProcessingStep

    greeting = ParameterString("Greeting", default_value="{default}")
    hello = ProcessingStep(name="Hello", code="hello.py", arguments=[greeting])
    pipeline = Pipeline(name="greeter", parameters=[greeting], steps=[hello])
"""


def versions_in(show_output: str) -> list[int]:
    return [int(v) for v in re.findall(r"^\s*(\d+)\s+[0-9a-f]{12}\s", show_output, flags=re.MULTILINE)]


def test_starting_stores_the_definition_and_bumps_the_version_only_when_it_changed(project, cli):
    project.write("hello.py", "import sys\nprint('hello', *sys.argv[1:])\n")
    project.write("pipeline.py", VERSIONED_PIPELINE.replace("{default}", "hi"))

    project.store().close()  # an empty store (read commands never create one)
    empty = cli("pipelines", "list", cwd=project.root)
    assert empty.returncode == 0 and "no pipelines yet" in empty.stdout, empty

    for _ in range(2):
        run = cli("run", "pipeline.py", cwd=project.root)
        assert run.returncode == 0, run
    listed = cli("pipelines", "list", cwd=project.root)
    assert listed.returncode == 0, listed
    assert re.search(r"greeter\s+v1\s+2\s", listed.stdout), listed  # version 1, two executions

    project.write("pipeline.py", VERSIONED_PIPELINE.replace("{default}", "bonjour"))
    run = cli("run", "pipeline.py", cwd=project.root)
    assert run.returncode == 0, run
    run = cli("run", "pipeline.py", "-p", "Greeting=hola", cwd=project.root)  # a parameter is not a change
    assert run.returncode == 0, run

    listed = cli("pipelines", "list", cwd=project.root)
    assert re.search(r"greeter\s+v2\s+4\s", listed.stdout), listed
    executions = {r.id: r.pipeline_version for r in project.store().list_executions()}
    assert sorted(executions.values()) == [1, 1, 2, 2]

    shown = cli("pipelines", "show", "greeter", cwd=project.root)
    assert shown.returncode == 0, shown
    assert versions_in(shown.stdout) == [1, 2] or versions_in(shown.stdout) == [2, 1], shown
    assert "Hello" in shown.stdout and "Greeting" in shown.stdout and "bonjour" in shown.stdout

    latest = cli("pipelines", "show", "greeter", "--definition", cwd=project.root)
    assert latest.returncode == 0, latest
    assert json.loads(latest.stdout) == json.loads(project.load().definition())
    first = cli("pipelines", "show", "greeter", "--version", "1", "--definition", cwd=project.root)
    assert first.returncode == 0, first
    assert json.loads(first.stdout)["Parameters"][0]["DefaultValue"] == "hi"
    assert Pipeline.from_definition(json.loads(first.stdout)).parameters[0].default_value == "hi"


@pytest.mark.parametrize("args", [["pipelines", "show", "nope"], ["pipelines", "show", "greeter", "--version", "9"]])
def test_showing_an_unknown_pipeline_or_version_is_one_clear_error(project, cli, args):
    project.write("hello.py", "print('hello')\n")
    project.write("pipeline.py", VERSIONED_PIPELINE.replace("{default}", "hi"))
    assert cli("run", "pipeline.py", cwd=project.root).returncode == 0

    shown = cli(*args, cwd=project.root)

    assert shown.returncode != 0, shown
    assert "Traceback" not in shown.output, shown
    assert shown.stderr.startswith("error: ") and len(shown.stderr.strip().splitlines()) == 1, shown
    assert args[2] in shown.stderr, shown
