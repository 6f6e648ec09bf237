"""Resolution of expressions and conditions against an execution's state."""

from datetime import UTC, datetime

import pytest

from forgeline.engine.resolve import ResolutionContext, evaluate, resolve
from forgeline.errors import ExpressionError
from forgeline.workflow import (
    ConditionEquals,
    ConditionGreaterThanOrEqualTo,
    ConditionIn,
    ConditionLessThan,
    ConditionNot,
    ConditionOr,
    ExecutionVariables,
    Format,
    Join,
    JsonGet,
    ParameterFloat,
)
from forgeline.workflow.expressions import Property


@pytest.fixture
def ctx() -> ResolutionContext:
    return ResolutionContext(
        execution_id="abc123", pipeline_name="demo", start_datetime=datetime(2026, 1, 2, tzinfo=UTC),
        parameters={"Threshold": 0.9},
        step_properties={
            "Evaluate": {"outputs": {"evaluation": "/a/evaluation"},
                         "PropertyFiles": {"Evaluation": {"metrics": {"accuracy": {"value": 0.95}},
                                                          "items": [{"v": 1}, {"v": 2}]}}},
            "Sum": {"outputs": {}, "Return": {"accuracy": 0.95, "runs": [1, 2]}},
        },
    )


def test_values(ctx: ResolutionContext) -> None:
    accuracy = JsonGet(step="Evaluate", property_file="Evaluation", json_path="metrics.accuracy.value")
    threshold = ParameterFloat("Threshold", 0.9)
    assert resolve(accuracy, ctx) == 0.95
    assert resolve(JsonGet(step="Evaluate", property_file="Evaluation", json_path="items[1].v"), ctx) == 2
    assert resolve(Join(on=" ", values=["accuracy", accuracy, "is below", threshold]), ctx) \
        == "accuracy 0.95 is below 0.9"
    assert resolve(Format("{}-{}", ExecutionVariables.PIPELINE_NAME, ExecutionVariables.EXECUTION_ID), ctx) \
        == "demo-abc123"
    assert resolve(Property("Evaluate", ("outputs",))["evaluation"], ctx) == "/a/evaluation"
    assert resolve(Property("Sum", ("return",))["runs"][1], ctx) == 2
    assert resolve(ExecutionVariables.START_DATETIME, ctx).startswith("2026-01-02")


def test_missing_json_path_names_the_path(ctx: ResolutionContext) -> None:
    with pytest.raises(ExpressionError, match=r"metrics\.acc\.value.*'acc'.*accuracy"):
        resolve(JsonGet(step="Evaluate", property_file="Evaluation", json_path="metrics.acc.value"), ctx)
    with pytest.raises(ExpressionError, match="out of range"):
        resolve(JsonGet(step="Evaluate", property_file="Evaluation", json_path="items[5]"), ctx)


def test_conditions(ctx: ResolutionContext) -> None:
    accuracy = JsonGet(step="Evaluate", property_file="Evaluation", json_path="metrics.accuracy.value")
    threshold = ParameterFloat("Threshold", 0.9)
    assert evaluate(ConditionGreaterThanOrEqualTo(left=accuracy, right=threshold), ctx)
    assert not evaluate(ConditionLessThan(left=accuracy, right=threshold), ctx)
    assert evaluate(ConditionIn(value=ExecutionVariables.PIPELINE_NAME, in_values=["x", "demo"]), ctx)
    assert evaluate(ConditionNot(expression=ConditionEquals(left=1, right=2)), ctx)
    assert evaluate(ConditionOr(conditions=[ConditionEquals(left=1, right=2), ConditionEquals(left=3, right=3)]), ctx)
    with pytest.raises(ExpressionError, match="cannot compare"):
        evaluate(ConditionLessThan(left="a", right=1), ctx)


def test_latest_approved_falls_back_to_its_default_only_when_asked(ctx: ResolutionContext) -> None:
    from forgeline.errors import ModelPackageNotFoundError
    from forgeline.workflow import ModelPackage
    from forgeline.workflow.expressions import parse_value

    def none_approved(group: str):
        raise ModelPackageNotFoundError(f"no approved package in {group!r}")

    ctx.find_latest_approved = none_approved
    current = ModelPackage.latest_approved("digits", default=None)
    assert resolve(current.version, ctx) is None and resolve(current.metrics, ctx) is None
    assert parse_value(current.metrics.expr) == current.metrics
    with pytest.raises(ModelPackageNotFoundError):
        resolve(ModelPackage.latest_approved("digits").version, ctx)
