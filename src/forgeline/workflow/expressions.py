"""Expressions: values known only at run time (parameters, step properties, JsonGet, Join, Format).

Each expression serialises to the pipeline-definition form SageMaker uses where the concepts coincide
(``{"Get": "Parameters.X"}``, ``{"Std:Join": ...}``, ``{"Std:JsonGet": ...}``) and is rebuilt by
:func:`parse_value`. Resolution against a running execution lives in the engine, never here.
"""

from __future__ import annotations

import re
import string
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from forgeline.errors import PipelineDefinitionError

if TYPE_CHECKING:
    from forgeline.workflow.steps.base import Step

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")


def check_name(kind: str, name: str) -> str:
    """Refuse names that cannot be referenced in a definition path."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise PipelineDefinitionError(
            f"invalid {kind} name {name!r}: use letters, digits, '-' and '_' (at most 128 characters)"
        )
    return name


class Expression(ABC):
    """A value resolved when a step runs; serialises into the definition JSON."""

    @property
    @abstractmethod
    def expr(self) -> dict[str, Any]:
        """The definition-JSON form of this expression."""

    def children(self) -> Iterable[Any]:
        """Values this expression is built from (walked to find step and parameter references)."""
        return ()

    def to_string(self) -> Join:
        """This value as a string expression."""
        return Join(on="", values=[self])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and self.expr == other.expr

    def __hash__(self) -> int:
        return hash(repr(self.expr))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expr!r})"

    def __bool__(self) -> bool:
        raise PipelineDefinitionError(
            f"{self!r} has no value until the pipeline runs; use a ConditionStep to branch on it"
        )


class ExecutionVariable(Expression):
    """A property of the running execution (its id, the pipeline name, its start time)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Get": "Execution.<Name>"}``."""
        return {"Get": f"Execution.{self.name}"}


class ExecutionVariables:
    """The execution variables a step can use."""

    EXECUTION_ID = ExecutionVariable("PipelineExecutionId")
    PIPELINE_EXECUTION_ID = EXECUTION_ID
    PIPELINE_NAME = ExecutionVariable("PipelineName")
    START_DATETIME = ExecutionVariable("StartDateTime")
    CURRENT_DATETIME = ExecutionVariable("CurrentDateTime")
    # The URI of the file whose arrival started the execution (a file trigger); empty otherwise.
    TRIGGER_URI = ExecutionVariable("TriggerUri")

    NAMES = ("PipelineExecutionId", "PipelineName", "StartDateTime", "CurrentDateTime", "TriggerUri")


PathPart = str | int
_PATH_TOKEN = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\['([^'\]]*)'\]|\[(\d+)\]")


def parse_path(text: str) -> tuple[PathPart, ...]:
    """Inverse of :func:`render_path` (text starts with ``.`` or ``[``)."""
    parts: list[PathPart] = []
    pos = 0
    while pos < len(text):
        match = _PATH_TOKEN.match(text, pos)
        if not match:
            raise PipelineDefinitionError(f"cannot parse property path {text!r} at position {pos}")
        attr, key, index = match.groups()
        parts.append(attr if attr is not None else key if key is not None else int(index))
        pos = match.end()
    return tuple(parts)


class Property(Expression):
    """A property of a step, known once the step has run (``step.properties.outputs["train"]``)."""

    # Set once in __init__ (attribute writes are refused after); declared so that reading them is not mistaken
    # for a property path through __getattr__.
    _step_name: str
    _path: tuple[PathPart, ...]
    _step: Step | None

    def __init__(self, step_name: str, path: tuple[PathPart, ...] = (), step: Step | None = None) -> None:
        object.__setattr__(self, "_step_name", step_name)
        object.__setattr__(self, "_path", sagemaker_alias(path))
        object.__setattr__(self, "_step", step)

    @property
    def step_name(self) -> str:
        """Name of the step this property belongs to."""
        return self._step_name

    @property
    def path(self) -> tuple[PathPart, ...]:
        """Attribute and key path inside the step's properties."""
        return self._path

    @property
    def step(self) -> Step | None:
        """The step object, when built in Python (None when parsed from a definition)."""
        return self._step

    def __getattr__(self, name: str) -> Property:
        if name.startswith("_"):
            raise AttributeError(name)
        return type(self)(self.step_name, (*self.path, name), self.step)

    def __getitem__(self, key: PathPart) -> Property:
        if isinstance(key, str) and ("'" in key or "]" in key):
            raise PipelineDefinitionError(f"property key {key!r} may not contain quotes or ']'")
        return type(self)(self.step_name, (*self.path, key), self.step)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("properties are read-only")

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Get": "Steps.<Step>.<path>"}``."""
        return {"Get": f"Steps.{self.step_name}{render_path(self.path)}"}

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.step_name, self.path, None))


SAGEMAKER_PROPERTY_ALIASES: dict[tuple[PathPart, ...], tuple[PathPart, ...]] = {
    ("ModelArtifacts", "S3ModelArtifacts"): ("model_artifacts",),
    ("TransformOutput", "S3OutputPath"): ("output_uri",),
}
"""SageMaker's property paths that name a forgeline property (plus ``ProcessingOutputConfig.Outputs[n]...``)."""


def sagemaker_alias(path: tuple[PathPart, ...]) -> tuple[PathPart, ...]:
    """The forgeline path a SageMaker property path stands for (``...Outputs['x'].S3Output.S3Uri`` is
    ``outputs['x']``); any other path comes back unchanged."""
    if len(path) == 5 and path[:2] == ("ProcessingOutputConfig", "Outputs") and path[3:] == ("S3Output", "S3Uri"):
        return ("outputs", path[2])
    return SAGEMAKER_PROPERTY_ALIASES.get(path, path)


def render_path(path: tuple[PathPart, ...]) -> str:
    """Render a property path: the first attribute as ``.name``, every later part bracketed (``['k']``, ``[0]``)."""
    out = []
    keyed = False
    for i, part in enumerate(path):
        if isinstance(part, int):
            out.append(f"[{part}]")
            keyed = True
        elif not keyed and i == 0 and part.isidentifier():
            out.append(f".{part}")
        else:
            out.append(f"['{part}']")
            keyed = True
    return "".join(out)


class StepProperties:
    """Entry point for a step's properties: ``step.properties.<name>``."""

    def __init__(self, step: Step) -> None:
        self._step = step

    def __getattr__(self, name: str) -> Property:
        if name.startswith("_"):
            raise AttributeError(name)
        return Property(self._step.name, (name,), self._step)


class JsonGet(Expression):
    """A value read by dotted path (with ``[i]`` indexes) from a property file of a finished step."""

    def __init__(self, step: Step | str | None = None, property_file: Any = None, json_path: str = "",
                 *, step_name: str | None = None) -> None:
        target = step if step is not None else step_name
        if target is None or (step is not None and step_name is not None):
            raise PipelineDefinitionError("JsonGet needs its step: give step= or step_name= (one of them)")
        self.step_name = target if isinstance(target, str) else target.name
        self.step = None if isinstance(target, str) else target
        if property_file is None:
            raise PipelineDefinitionError(f"JsonGet on step {self.step_name!r} needs a property_file")
        self.property_file_name: str = (
            property_file if isinstance(property_file, str) else property_file.name
        )
        if not isinstance(json_path, str) or not json_path:
            raise PipelineDefinitionError(f"JsonGet on step {self.step_name!r} needs a non-empty json_path")
        self.json_path = json_path
        parse_json_path(json_path)

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Std:JsonGet": {"PropertyFile": {"Get": ...}, "Path": ...}}``."""
        return {
            "Std:JsonGet": {
                "PropertyFile": {"Get": f"Steps.{self.step_name}.PropertyFiles.{self.property_file_name}"},
                "Path": self.json_path,
            }
        }


_JSON_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\.")


def parse_json_path(path: str) -> list[PathPart]:
    """Split ``a.b[0].c`` into ``["a", "b", 0, "c"]``; refuse malformed paths."""
    parts: list[PathPart] = []
    pos = 0
    expect_key = True
    while pos < len(path):
        match = _JSON_PATH_TOKEN.match(path, pos)
        if not match or match.end() == pos:
            raise PipelineDefinitionError(f"malformed JSON path {path!r} at position {pos}")
        key, index = match.groups()
        if key is not None:
            parts.append(key)
            expect_key = False
        elif index is not None:
            parts.append(int(index))
            expect_key = False
        else:
            if expect_key:
                raise PipelineDefinitionError(f"malformed JSON path {path!r}: empty key at position {pos}")
            expect_key = True
        pos = match.end()
    if expect_key:
        raise PipelineDefinitionError(f"malformed JSON path {path!r}: it ends with '.'")
    return parts


class Join(Expression):
    """Values (expressions or literals) rendered as strings and joined with ``on``."""

    def __init__(self, on: str = "", values: list[Any] | None = None) -> None:
        self.on = on
        self.values = list(values or [])

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Std:Join": {"On": ..., "Values": [...]}}``."""
        return {"Std:Join": {"On": self.on, "Values": [serialize(v) for v in self.values]}}

    def children(self) -> Iterable[Any]:
        """The joined values."""
        return self.values


class Format(Expression):
    """``str.format``-style templating with positional ``{}`` fields: ``Format("{}-{}", a, b)``."""

    def __init__(self, template: str, *values: Any) -> None:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
        if any(f not in ("",) and not f.isdigit() for f in fields):
            raise PipelineDefinitionError(
                f"Format template {template!r} may only use positional fields like {{}} or {{0}}"
            )
        needed = max((int(f) + 1 for f in fields if f.isdigit()), default=0)
        needed = max(needed, sum(1 for f in fields if f == ""))
        if needed != len(values):
            raise PipelineDefinitionError(
                f"Format template {template!r} has {needed} field(s) but {len(values)} value(s) were given"
            )
        self.template = template
        self.values = list(values)

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Std:Format": {"Template": ..., "Values": [...]}}``."""
        return {"Std:Format": {"Template": self.template, "Values": [serialize(v) for v in self.values]}}

    def children(self) -> Iterable[Any]:
        """The formatted values."""
        return self.values


def serialize(value: Any) -> Any:
    """Turn a value that may hold expressions, conditions or steps into definition JSON."""
    if isinstance(value, Expression):
        return value.expr
    to_request = getattr(value, "to_request", None)
    if to_request is not None and callable(to_request):
        return to_request()
    if isinstance(value, Mapping):
        return {str(k): serialize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [serialize(v) for v in value]
    return value


def walk(value: Any) -> Iterator[Any]:
    """Yield every expression and condition nested inside a value (lists, dicts and composite nodes)."""
    if isinstance(value, Expression):
        yield value
        for child in value.children():
            yield from walk(child)
    elif isinstance(value, Mapping):
        for child in value.values():
            yield from walk(child)
    elif isinstance(value, (list, tuple)):
        for child in value:
            yield from walk(child)
    elif hasattr(value, "children") and hasattr(value, "to_request"):
        yield value
        for child in value.children():
            yield from walk(child)


def parse_value(value: Any) -> Any:
    """Rebuild expressions from definition JSON; literals come back unchanged."""
    from forgeline.workflow.parameters import ParameterReference

    if isinstance(value, list):
        return [parse_value(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and "Get" in value and isinstance(value["Get"], str):
        return _parse_get(value["Get"], ParameterReference)
    if len(value) == 1 and "Std:Join" in value:
        body = value["Std:Join"]
        return Join(on=body.get("On", ""), values=[parse_value(v) for v in body.get("Values", [])])
    if len(value) == 1 and "Std:Format" in value:
        body = value["Std:Format"]
        return Format(body["Template"], *[parse_value(v) for v in body.get("Values", [])])
    if len(value) == 1 and "Std:JsonGet" in value:
        body = value["Std:JsonGet"]
        ref = body["PropertyFile"]["Get"] if isinstance(body["PropertyFile"], dict) else body["PropertyFile"]
        match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.(.+)", ref)
        if not match:
            raise PipelineDefinitionError(f"cannot parse JsonGet property file reference {ref!r}")
        return JsonGet(step=match.group(1), property_file=match.group(2), json_path=body["Path"])
    if len(value) == 1 and "Std:LatestApprovedModelPackage" in value:
        from forgeline.workflow.models import LatestApprovedModelPackage

        return LatestApprovedModelPackage.from_expr(value["Std:LatestApprovedModelPackage"])
    return {k: parse_value(v) for k, v in value.items()}


def _parse_get(ref: str, parameter_reference: Callable[[str], Expression]) -> Expression:
    head, _, rest = ref.partition(".")
    if head == "Parameters":
        return parameter_reference(rest)
    if head == "Execution":
        if rest not in ExecutionVariables.NAMES:
            raise PipelineDefinitionError(f"unknown execution variable {rest!r}")
        return ExecutionVariable(rest)
    if head == "ForEach":
        from forgeline.workflow.steps.foreach import parse_item_reference

        return parse_item_reference(ref)
    if head == "Steps":
        match = re.match(r"([A-Za-z0-9_\-]+)", rest)
        if not match:
            raise PipelineDefinitionError(f"cannot parse step reference {ref!r}")
        return Property(match.group(1), parse_path(rest[match.end():]))
    raise PipelineDefinitionError(f"cannot parse reference {ref!r}")
