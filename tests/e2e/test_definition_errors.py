"""A pipeline that cannot run is refused when it is defined, with a message naming the steps involved."""

from __future__ import annotations

import re

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import (
    ConditionEquals,
    ConditionStep,
    FailStep,
    JsonGet,
    ParameterFloat,
    ParameterString,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    step,
)


@pytest.fixture
def scripts(project):
    """A project with a do-nothing script, so only the error under test is wrong."""
    project.write("noop.py", "print('ok')\n")
    return project


def test_duplicate_step_names(scripts):
    first = ProcessingStep(name="Train", code="noop.py")
    second = ProcessingStep(name="Train", code="noop.py")

    with pytest.raises(PipelineDefinitionError, match="'Train'") as caught:
        Pipeline(name="dupes", steps=[first, second])
    assert "unique" in str(caught.value)


@step(name="Score")
def score(value: float) -> float:
    return value


def test_a_step_function_called_twice_without_distinct_names(scripts):
    with pytest.raises(PipelineDefinitionError, match="'Score'"):
        Pipeline(name="dupes", steps=[score(1.0), score(2.0)])


def test_a_cycle_is_refused_and_printed(scripts):
    a = ProcessingStep(name="A", code="noop.py", depends_on=["C"])
    b = ProcessingStep(name="B", code="noop.py", depends_on=[a])
    c = ProcessingStep(name="C", code="noop.py", depends_on=[b])

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="loop", steps=[a, b, c])
    message = str(caught.value)
    assert "cycle" in message
    rotations = ["A -> B -> C -> A", "B -> C -> A -> B", "C -> A -> B -> C"]
    assert any(r in message for r in rotations), message


def test_a_cycle_through_data_references_is_refused(scripts):
    producer = ProcessingStep(name="Producer", code="noop.py", depends_on=["Consumer"],
                              outputs=[ProcessingOutput(output_name="data", source="out")])
    consumer = ProcessingStep(name="Consumer", code="noop.py",
                              inputs=[ProcessingInput(source=producer.properties.outputs["data"], destination="in")])

    with pytest.raises(PipelineDefinitionError, match=r"cycle.*(Producer -> Consumer|Consumer -> Producer)"):
        Pipeline(name="loop", steps=[producer, consumer])


def test_a_reference_to_a_step_not_in_the_pipeline(scripts):
    outside = ProcessingStep(name="Outside", code="noop.py",
                             outputs=[ProcessingOutput(output_name="data", source="out")])
    inside = ProcessingStep(name="Inside", code="noop.py",
                            inputs=[ProcessingInput(source=outside.properties.outputs["data"], destination="in")])

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="partial", steps=[inside])
    assert "'Inside'" in str(caught.value) and "'Outside'" in str(caught.value)


def test_depends_on_a_step_not_in_the_pipeline(scripts):
    lonely = ProcessingStep(name="Lonely", code="noop.py", depends_on=["Ghost"])

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="partial", steps=[lonely])
    assert "'Lonely'" in str(caught.value) and "'Ghost'" in str(caught.value)


def test_a_reference_to_an_output_the_step_does_not_declare(scripts):
    producer = ProcessingStep(name="Producer", code="noop.py",
                              outputs=[ProcessingOutput(output_name="data", source="out")])
    consumer = ProcessingStep(name="Consumer", code="noop.py",
                              inputs=[ProcessingInput(source=producer.properties.outputs["model"], destination="in")])

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="typo", steps=[producer, consumer])
    message = str(caught.value)
    assert "'Consumer'" in message and "'Producer'" in message and "'model'" in message


def test_a_parameter_not_in_the_pipeline(scripts):
    declared = ParameterString("Declared", default_value="x")
    forgotten = ParameterFloat("Forgotten", default_value=0.5)
    uses = ProcessingStep(name="Uses", code="noop.py", arguments=[declared, forgotten])

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="params", parameters=[declared], steps=[uses])
    assert "'Forgotten'" in str(caught.value) and "'Uses'" in str(caught.value)


def test_a_parameter_used_only_in_a_condition_must_be_declared(scripts):
    forgotten = ParameterString("Mode", default_value="a")
    gate = ConditionStep(name="Gate", conditions=[ConditionEquals(left=forgotten, right="a")],
                         else_steps=[FailStep(name="Stop", error_message="no")])

    with pytest.raises(PipelineDefinitionError, match="'Mode'"):
        Pipeline(name="params", steps=[gate])


def test_json_get_on_a_property_file_the_step_does_not_declare(scripts):
    evaluation = PropertyFile(name="Evaluation", output_name="report", path="evaluation.json")
    evaluate = ProcessingStep(name="Evaluate", code="noop.py",
                              outputs=[ProcessingOutput(output_name="report", source="report")])
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionEquals(left=JsonGet(step=evaluate, property_file=evaluation, json_path="ok"),
                                    right=True)],
        else_steps=[FailStep(name="Stop", error_message="not ok")],
    )

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="undeclared", steps=[evaluate, gate])
    message = str(caught.value)
    assert "'Evaluation'" in message and "'Evaluate'" in message and "'Gate'" in message


def test_a_property_file_in_an_output_the_step_does_not_declare(scripts):
    with pytest.raises(PipelineDefinitionError) as caught:
        ProcessingStep(name="Evaluate", code="noop.py",
                       outputs=[ProcessingOutput(output_name="report", source="report")],
                       property_files=[PropertyFile(name="Evaluation", output_name="metrics", path="e.json")])
    message = str(caught.value)
    assert "'Evaluate'" in message and "'metrics'" in message


def test_a_missing_code_file(scripts):
    missing = ProcessingStep(name="Train", code="scripts/train.py")

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="missing", steps=[missing])
    assert "'Train'" in str(caught.value) and "scripts/train.py" in str(caught.value)


def test_a_missing_code_file_inside_source_dir(scripts):
    scripts.write("src/helper.py", "VALUE = 1\n")
    missing = ProcessingStep(name="Train", code="train.py", source_dir="src")

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="missing", steps=[missing])
    assert "'Train'" in str(caught.value) and re.search(r"src/train\.py", str(caught.value))


def test_a_missing_source_dir(scripts):
    missing = ProcessingStep(name="Train", code="train.py", source_dir="nowhere")

    with pytest.raises(PipelineDefinitionError) as caught:
        Pipeline(name="missing", steps=[missing])
    assert "'Train'" in str(caught.value) and "nowhere" in str(caught.value)


def test_a_definition_document_with_a_cycle_is_refused(scripts):
    a = ProcessingStep(name="A", code="noop.py")
    b = ProcessingStep(name="B", code="noop.py", depends_on=[a])
    doc = Pipeline(name="fine", steps=[a, b]).definition().as_dict()
    doc["Steps"][0]["DependsOn"] = ["B"]

    with pytest.raises(PipelineDefinitionError, match=r"A -> B -> A|B -> A -> B"):
        Pipeline.from_definition(doc)


BAD_PIPELINE_FILE = """
    from forgeline.workflow import Pipeline, ProcessingStep

    a = ProcessingStep(name="Extract", code="noop.py", depends_on=["Load"])
    b = ProcessingStep(name="Load", code="noop.py", depends_on=[a])
    pipeline = Pipeline(name="etl", steps=[a, b])
"""


def test_the_cli_reports_a_definition_error_in_one_line_and_runs_nothing(scripts, cli, forgeline_home):
    scripts.write("pipeline.py", BAD_PIPELINE_FILE)

    run = cli("run", "pipeline.py", cwd=scripts.root)

    assert run.returncode != 0, run
    assert "Traceback" not in run.output, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run
    assert lines[0].startswith("error: ") and "cycle" in lines[0], run
    assert "Extract -> Load -> Extract" in lines[0] or "Load -> Extract -> Load" in lines[0], run
    assert scripts.store().list_executions() == []

    debug = cli("run", "pipeline.py", "--debug", cwd=scripts.root)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "PipelineDefinitionError" in debug.stderr, debug


def test_the_cli_reports_a_missing_pipeline_file(cli, project):
    run = cli("run", "no_such_pipeline.py", cwd=project.root)

    assert run.returncode != 0, run
    assert "Traceback" not in run.output, run
    assert "no_such_pipeline.py" in run.stderr and len(run.stderr.strip().splitlines()) == 1, run
