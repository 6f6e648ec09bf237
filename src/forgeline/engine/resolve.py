"""Resolve expressions and evaluate conditions against the state of a running execution."""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import singledispatch
from typing import Any

from forgeline.errors import ExpressionError, ModelPackageNotFoundError
from forgeline.store.metadata.records import ModelPackageRecord
from forgeline.workflow.conditions import (
    Condition,
    ConditionComparison,
    ConditionIn,
    ConditionNot,
    ConditionOr,
)
from forgeline.workflow.expressions import (
    ExecutionVariable,
    Format,
    Join,
    JsonGet,
    Property,
    parse_json_path,
    render_path,
)
from forgeline.workflow.models import LatestApprovedModelPackage
from forgeline.workflow.parameters import Parameter, ParameterReference


class StepNotRunError(ExpressionError):
    """An expression refers to a step that did not run (yet, or at all: skipped)."""


@dataclass
class ResolutionContext:
    """What expressions can see: parameters, execution variables, and finished steps' properties."""

    execution_id: str
    pipeline_name: str
    start_datetime: datetime
    parameters: Mapping[str, Any]
    step_properties: dict[str, dict[str, Any]] = field(default_factory=dict)
    load_return: Callable[[str], Any] = lambda uri: None
    # The registry's lookup of a group's newest Approved package (None: ModelPackage expressions cannot resolve).
    find_latest_approved: Callable[[str], ModelPackageRecord] | None = None
    find_model_package: Callable[[str, int], ModelPackageRecord] | None = None
    trigger_uri: str = ""  # the file that started the execution (ExecutionVariables.TRIGGER_URI), "" if none

    def properties_of(self, step_name: str) -> dict[str, Any]:
        """The property document of a finished step."""
        if step_name not in self.step_properties:
            raise StepNotRunError(f"step {step_name!r} has not produced its properties yet")
        return self.step_properties[step_name]


def render(value: Any) -> str:
    """A resolved value as text (for Join, Format, arguments and environment variables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


@singledispatch
def resolve(value: Any, ctx: ResolutionContext) -> Any:
    """The run-time value of ``value``; literals, lists and dicts are resolved element by element."""
    if isinstance(value, list | tuple):
        return [resolve(v, ctx) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, ctx) for k, v in value.items()}
    return value


@resolve.register(Parameter)
@resolve.register(ParameterReference)
def _parameter(value: Parameter | ParameterReference, ctx: ResolutionContext) -> Any:
    if value.name not in ctx.parameters:
        raise ExpressionError(f"parameter {value.name!r} has no value in this execution")
    return ctx.parameters[value.name]


@resolve.register(ExecutionVariable)
def _execution_variable(value: ExecutionVariable, ctx: ResolutionContext) -> Any:
    if value.name == "PipelineExecutionId":
        return ctx.execution_id
    if value.name == "PipelineName":
        return ctx.pipeline_name
    if value.name == "StartDateTime":
        return ctx.start_datetime.isoformat()
    if value.name == "TriggerUri":
        return ctx.trigger_uri
    return datetime.now(UTC).isoformat()


@resolve.register(Property)
def _property(value: Property, ctx: ResolutionContext) -> Any:
    document = ctx.properties_of(value.step_name)
    path = list(value.path)
    if path[:1] == ["return"]:
        current = document["Return"] if "Return" in document else ctx.load_return(document["ReturnUri"])
        return walk_path(current, path[1:], f"return value of step {value.step_name!r}")
    return walk_path(document, path, f"properties of step {value.step_name!r}")


@resolve.register(JsonGet)
def _json_get(value: JsonGet, ctx: ResolutionContext) -> Any:
    files = ctx.properties_of(value.step_name).get("PropertyFiles", {})
    if value.property_file_name not in files:
        raise ExpressionError(
            f"step {value.step_name!r} produced no property file {value.property_file_name!r}"
        )
    where = f"property file {value.property_file_name!r} of step {value.step_name!r}"
    try:
        return walk_path(files[value.property_file_name], parse_json_path(value.json_path), where)
    except ExpressionError as exc:
        raise ExpressionError(f"JsonGet path {value.json_path!r} does not exist: {exc}") from None


@resolve.register(Join)
def _join(value: Join, ctx: ResolutionContext) -> str:
    return value.on.join(render(resolve(v, ctx)) for v in value.values)


@resolve.register(Format)
def _format(value: Format, ctx: ResolutionContext) -> str:
    return value.template.format(*(render(resolve(v, ctx)) for v in value.values))


def model_package_of(value: LatestApprovedModelPackage, ctx: ResolutionContext) -> ModelPackageRecord:
    """The package a ``ModelPackage.latest_approved(...)`` expression points at right now."""
    group = render(resolve(value.group, ctx))
    if ctx.find_latest_approved is None:
        raise ExpressionError(
            f"ModelPackage.latest_approved({group!r}) needs the model registry, which is not available where "
            "this expression is resolved (no registry lookup was given to the resolution context)"
        )
    return ctx.find_latest_approved(group)


@resolve.register(LatestApprovedModelPackage)
def _latest_approved(value: LatestApprovedModelPackage, ctx: ResolutionContext) -> Any:
    try:
        package = model_package_of(value, ctx)
    except ModelPackageNotFoundError:
        if value.has_default:
            return value.default
        raise
    return {"ModelData": package.model_data, "Version": package.version, "Arn": package.arn,
            "Metrics": package.metrics}[value.property_name]


def walk_path(document: Any, path: list[Any], where: str) -> Any:
    """Follow keys and indexes into a document, explaining exactly where a path breaks."""
    current = document
    for depth, part in enumerate(path):
        so_far = render_path(tuple(path[: depth + 1]))
        if isinstance(part, int) and isinstance(current, list):
            if part >= len(current):
                raise ExpressionError(f"{where}: index {so_far} is out of range (length {len(current)})")
            current = current[part]
        elif isinstance(current, dict) and str(part) in current:
            current = current[str(part)]
        elif isinstance(current, dict):
            keys = ", ".join(map(str, list(current)[:10])) or "none"
            raise ExpressionError(f"{where}: no key {part!r} at {so_far} (keys there: {keys})")
        else:
            raise ExpressionError(f"{where}: cannot look up {part!r} in a {type(current).__name__} at {so_far}")
    return current


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}


@singledispatch
def evaluate(condition: Condition, ctx: ResolutionContext) -> bool:
    """Whether ``condition`` holds."""
    raise ExpressionError(f"cannot evaluate condition {condition!r}")


@evaluate.register(ConditionComparison)
def _comparison(condition: ConditionComparison, ctx: ResolutionContext) -> bool:
    left, right = resolve(condition.left, ctx), resolve(condition.right, ctx)
    try:
        return bool(_COMPARISONS[condition.condition_type](left, right))
    except TypeError:
        raise ExpressionError(
            f"{condition.condition_type} cannot compare {left!r} ({type(left).__name__}) "
            f"with {right!r} ({type(right).__name__})"
        ) from None


@evaluate.register(ConditionIn)
def _in(condition: ConditionIn, ctx: ResolutionContext) -> bool:
    return resolve(condition.value, ctx) in [resolve(v, ctx) for v in condition.in_values]


@evaluate.register(ConditionNot)
def _not(condition: ConditionNot, ctx: ResolutionContext) -> bool:
    return not evaluate(condition.expression, ctx)


@evaluate.register(ConditionOr)
def _or(condition: ConditionOr, ctx: ResolutionContext) -> bool:
    return any(evaluate(c, ctx) for c in condition.conditions)
