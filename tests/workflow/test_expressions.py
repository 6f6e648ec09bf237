"""Expressions serialise to SageMaker's definition forms and parse back."""

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import ExecutionVariables, Format, Join, JsonGet, ParameterFloat
from forgeline.workflow.expressions import Property, parse_json_path, parse_value


def test_forms_match_the_sagemaker_schema() -> None:
    threshold = ParameterFloat("Threshold", 0.9)
    assert threshold.expr == {"Get": "Parameters.Threshold"}
    assert ExecutionVariables.EXECUTION_ID.expr == {"Get": "Execution.PipelineExecutionId"}
    assert Join(on=" ", values=["a", threshold]).expr == {
        "Std:Join": {"On": " ", "Values": ["a", {"Get": "Parameters.Threshold"}]}}
    assert JsonGet(step="Evaluate", property_file="Evaluation", json_path="metrics.accuracy.value").expr == {
        "Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Evaluation"},
                        "Path": "metrics.accuracy.value"}}
    assert Property("Prepare", ("outputs",))["train"].expr == {"Get": "Steps.Prepare.outputs['train']"}


@pytest.mark.parametrize("expression", [
    Join(on="-", values=["x", ParameterFloat("T", 1.0), ExecutionVariables.PIPELINE_NAME]),
    Format("{}/{}", ExecutionVariables.START_DATETIME, Property("S", ("outputs",))["a-b"]),
    JsonGet(step="E", property_file="P", json_path="a.b[0].c"),
    Property("Train", ("metrics",))["testing_ap"],
    Property("F", ("return",))["key"][0],
])
def test_round_trip(expression: object) -> None:
    assert parse_value(expression.expr) == expression  # type: ignore[attr-defined]


def test_format_checks_its_fields() -> None:
    with pytest.raises(PipelineDefinitionError, match="2 field"):
        Format("{}-{}", "only one")
    with pytest.raises(PipelineDefinitionError, match="positional"):
        Format("{name}", "x")


@pytest.mark.parametrize("path", ["a..b", ".a", "a.", "a[x]", ""])
def test_malformed_json_paths_are_refused(path: str) -> None:
    with pytest.raises(PipelineDefinitionError):
        parse_json_path(path)


def test_json_path_parts() -> None:
    assert parse_json_path("metrics.items[2].value") == ["metrics", "items", 2, "value"]


def test_expressions_cannot_be_used_as_booleans() -> None:
    with pytest.raises(PipelineDefinitionError, match="ConditionStep"):
        bool(ParameterFloat("T", 1.0))
