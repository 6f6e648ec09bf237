"""Parameters: overrides are coerced and reach the scripts; bad overrides are refused before anything runs."""

from __future__ import annotations

import json

import pytest

from forgeline.errors import ParameterError

ECHO_ARGUMENTS = """
    import json, sys
    from pathlib import Path
    Path("report").mkdir(exist_ok=True)
    Path("report/argv.json").write_text(json.dumps(sys.argv[1:]))
    print("arguments:", " ".join(sys.argv[1:]))
"""

TYPED_PIPELINE = """
    from forgeline.workflow import (
        Pipeline, ParameterBoolean, ParameterFloat, ParameterInteger, ParameterString,
        ProcessingOutput, ProcessingStep,
    )

    count = ParameterInteger("Count", default_value=1)
    rate = ParameterFloat("Rate", default_value=0.5)
    verbose = ParameterBoolean("Verbose", default_value=False)
    mode = ParameterString("Mode", default_value="fast", enum_values=["fast", "slow"])

    echo = ProcessingStep(
        name="Echo", code="echo.py",
        outputs=[ProcessingOutput(output_name="report", source="report")],
        arguments=["--count", count, "--rate", rate, "--verbose", verbose, "--mode", mode],
    )
    pipeline = Pipeline(name="typed", parameters=[count, rate, verbose, mode], steps=[echo])
"""

REQUIRED_PIPELINE = """
    from forgeline.workflow import Pipeline, ParameterString, ProcessingStep

    name = ParameterString("DatasetName")
    echo = ProcessingStep(name="Echo", code="echo.py", arguments=[name])
    pipeline = Pipeline(name="required", parameters=[name], steps=[echo])
"""


@pytest.fixture
def typed(project):
    project.write("echo.py", ECHO_ARGUMENTS)
    project.write("pipeline.py", TYPED_PIPELINE)
    return project


def echoed_arguments(project, finished) -> list[str]:
    return json.loads(project.read_output(finished.steps["Echo"].outputs["report"], "argv.json"))


def test_defaults_reach_the_script(typed):
    finished = typed.run()

    assert finished.status == "Succeeded", finished.failure_reason
    assert echoed_arguments(typed, finished) == ["--count", "1", "--rate", "0.5", "--verbose", "false",
                                                 "--mode", "fast"]
    assert finished.execution.parameters == {"Count": 1, "Rate": 0.5, "Verbose": False, "Mode": "fast"}


def test_python_overrides_are_coerced_and_reach_the_script(typed):
    finished = typed.run(parameters={"Count": 5, "Rate": 2, "Verbose": True, "Mode": "slow"})

    assert finished.status == "Succeeded", finished.failure_reason
    assert finished.execution.parameters == {"Count": 5, "Rate": 2.0, "Verbose": True, "Mode": "slow"}
    assert echoed_arguments(typed, finished) == ["--count", "5", "--rate", "2.0", "--verbose", "true",
                                                 "--mode", "slow"]


def test_cli_overrides_are_coerced_from_text_and_reach_the_script(typed, cli):
    run = cli("run", "pipeline.py", "-p", "Count=7", "-p", "Rate=0.25", "-p", "Verbose=yes", "-p", "Mode=slow",
              cwd=typed.root)

    assert run.returncode == 0, run
    [record] = typed.store().list_executions()
    assert record.parameters == {"Count": 7, "Rate": 0.25, "Verbose": True, "Mode": "slow"}
    logs = cli("logs", record.id, "Echo", cwd=typed.root)
    assert "arguments: --count 7 --rate 0.25 --verbose true --mode slow" in logs.stdout, logs


BAD_PYTHON_OVERRIDES = [
    pytest.param({"Cuont": 3}, "Cuont", id="unknown-name"),
    pytest.param({"Count": "three"}, "Count", id="integer-from-text"),
    pytest.param({"Count": 2.5}, "Count", id="integer-from-fraction"),
    pytest.param({"Rate": "fast"}, "Rate", id="float-from-text"),
    pytest.param({"Verbose": "maybe"}, "Verbose", id="boolean-from-text"),
    pytest.param({"Mode": "medium"}, "Mode", id="outside-enum"),
    pytest.param({"Mode": 3}, "Mode", id="string-from-number"),
]


@pytest.mark.parametrize(("overrides", "named"), BAD_PYTHON_OVERRIDES)
def test_bad_python_overrides_are_refused_before_anything_runs(typed, forgeline_home, overrides, named):
    pipeline = typed.load()

    with pytest.raises(ParameterError, match=repr(named)):
        pipeline.start(parameters=overrides)

    assert typed.store().list_executions() == []
    assert not (forgeline_home / "jobs").exists()
    assert not (forgeline_home / "logs").exists()


def test_a_parameter_without_default_must_be_given(project):
    project.write("echo.py", ECHO_ARGUMENTS)
    project.write("pipeline.py", REQUIRED_PIPELINE)
    pipeline = project.load()

    with pytest.raises(ParameterError, match="'DatasetName'"):
        pipeline.start()
    assert project.store().list_executions() == []

    finished = project.run(parameters={"DatasetName": "iris"})
    assert finished.status == "Succeeded", finished.failure_reason


BAD_CLI_OVERRIDES = [
    pytest.param(["-p", "Cuont=3"], "Cuont", id="unknown-name"),
    pytest.param(["-p", "Count=three"], "Count", id="wrong-type"),
    pytest.param(["-p", "Verbose=maybe"], "Verbose", id="wrong-boolean"),
    pytest.param(["-p", "Mode=medium"], "Mode", id="outside-enum"),
]


@pytest.mark.parametrize(("args", "named"), BAD_CLI_OVERRIDES)
def test_bad_cli_overrides_are_refused_with_a_message_naming_the_parameter(typed, cli, args, named):
    run = cli("run", "pipeline.py", *args, cwd=typed.root)

    assert run.returncode != 0, run
    assert "Traceback" not in run.output, run
    assert f"'{named}'" in run.stderr, run
    assert run.stderr.startswith("error: "), run
    assert typed.store().list_executions() == []
    listed = cli("executions", "list", cwd=typed.root)
    assert "no executions yet" in listed.stdout, listed


@pytest.mark.parametrize(("args", "named"), BAD_CLI_OVERRIDES)
def test_bad_cli_overrides_print_one_line_on_a_standard_terminal(typed, cli, args, named):
    """One line, even at the 80 columns rich assumes when stderr is a pipe or a small terminal."""
    run = cli("run", "pipeline.py", *args, cwd=typed.root, columns=80)

    assert run.returncode != 0, run
    assert len(run.stderr.strip().splitlines()) == 1, run
    assert f"'{named}'" in run.stderr, run


def test_bad_override_of_the_quickstart_is_refused(cli, forgeline_home):
    run = cli("run", "examples/quickstart/pipeline.py", "-p", "Seed=abc")

    assert run.returncode != 0, run
    assert "'Seed'" in run.stderr and "Traceback" not in run.output, run
    assert not (forgeline_home / "jobs").exists()
