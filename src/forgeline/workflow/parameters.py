"""Typed pipeline parameters and the coercion of overrides given at start time."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from forgeline.errors import ParameterError, PipelineDefinitionError
from forgeline.workflow.expressions import Expression, check_name

BOOLEAN_SPELLINGS = (("true", "false"), ("yes", "no"), ("y", "n"), ("on", "off"), ("1", "0"))
"""Accepted override spellings of a Boolean parameter, (true, false) pairs, in any case."""
_TRUE = {true for true, _ in BOOLEAN_SPELLINGS}
_FALSE = {false for _, false in BOOLEAN_SPELLINGS}
_EXTENSION = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,7}$")


class Parameter(Expression):
    """A named, typed value supplied when an execution starts (``{"Get": "Parameters.<Name>"}``)."""

    parameter_type: ClassVar[str] = ""
    python_type: ClassVar[type] = object

    def __init__(self, name: str, default_value: Any = None, enum_values: Sequence[Any] | None = None) -> None:
        self.name = check_name("parameter", name)
        self.enum_values = None if enum_values is None else [self._coerce_or_definition_error(v)
                                                             for v in enum_values]
        self.default_value = None if default_value is None else self._coerce_or_definition_error(default_value)
        if self.default_value is not None and self.enum_values is not None \
                and self.default_value not in self.enum_values:
            raise PipelineDefinitionError(
                f"parameter {name!r}: default value {self.default_value!r} is not one of {self.enum_values}"
            )

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Get": "Parameters.<Name>"}``."""
        return {"Get": f"Parameters.{self.name}"}

    def to_request(self) -> dict[str, Any]:
        """The parameter's declaration in the definition JSON."""
        declaration: dict[str, Any] = {"Name": self.name, "Type": self.parameter_type}
        if self.default_value is not None:
            declaration["DefaultValue"] = self.default_value
        if self.enum_values is not None:
            declaration["EnumValues"] = list(self.enum_values)
        return declaration

    def coerce(self, value: Any) -> Any:
        """Convert an override (a Python value, or text from the command line) to this parameter's type.

        An empty text is refused unless the type gives it a meaning (see ``accepts_empty``).
        """
        if isinstance(value, str) and not value.strip() and not self.accepts_empty():
            raise ParameterError(
                f"parameter {self.name!r} ({self.parameter_type}) cannot be empty: {self.empty_hint()}"
            )
        try:
            coerced = self._convert(value)
        except (TypeError, ValueError) as exc:
            raise ParameterError(
                f"parameter {self.name!r} expects {self.parameter_type}, got {value!r}: {exc}"
            ) from None
        if self.enum_values is not None and coerced not in self.enum_values:
            raise ParameterError(
                f"parameter {self.name!r} must be one of {self.enum_values}, got {coerced!r}"
            )
        return coerced

    def accepts_empty(self) -> bool:
        """Whether an empty text is a meaningful value: never for numbers and booleans."""
        return False

    def empty_hint(self) -> str:
        """What to give instead of an empty value."""
        return f"give a {self.parameter_type} value" + self._default_hint()

    def _default_hint(self) -> str:
        return "" if self.default_value is None else f", or leave out -p {self.name}= to use the default"

    def _coerce_or_definition_error(self, value: Any) -> Any:
        try:
            return self._convert(value)
        except (TypeError, ValueError) as exc:
            raise PipelineDefinitionError(
                f"parameter {self.name!r} expects {self.parameter_type} values, got {value!r}: {exc}"
            ) from None

    def _convert(self, value: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, default_value={self.default_value!r})"


class ParameterString(Parameter):
    """A string parameter; an empty override is refused when the default value is a path or URI."""

    parameter_type = "String"
    python_type = str

    def accepts_empty(self) -> bool:
        """An empty string is a value, except where a path or URI is expected (the default is one)."""
        return not looks_like_path(self.default_value)

    def empty_hint(self) -> str:
        """Ask for a path, since the default is one."""
        return f"it is a path or URI like its default {self.default_value!r}; give one" + self._default_hint()

    def _convert(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"a string is required, not {type(value).__name__}")
        return value


class ParameterInteger(Parameter):
    """An integer parameter."""

    parameter_type = "Integer"
    python_type = int

    def _convert(self, value: Any) -> int:
        if isinstance(value, bool):
            raise TypeError("a boolean is not an integer")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            return int(value.strip())
        raise TypeError(f"an integer is required, not {type(value).__name__}")


class ParameterFloat(Parameter):
    """A floating-point parameter."""

    parameter_type = "Float"
    python_type = float

    def _convert(self, value: Any) -> float:
        if isinstance(value, bool):
            raise TypeError("a boolean is not a number")
        if isinstance(value, (int, float)):
            result = float(value)
        elif isinstance(value, str):
            result = float(value.strip())
        else:
            raise TypeError(f"a number is required, not {type(value).__name__}")
        if not math.isfinite(result):
            raise ValueError("the value must be finite")
        return result


class ParameterBoolean(Parameter):
    """A boolean parameter (overrides accept true/false, yes/no, y/n, on/off, 1/0, in any case)."""

    parameter_type = "Boolean"
    python_type = bool

    def _convert(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise TypeError("use one of " + ", ".join(f"{t}/{f}" for t, f in BOOLEAN_SPELLINGS) + " (any case)")


def looks_like_path(value: Any) -> bool:
    """Whether a default value is a path or URI: it has a folder separator or ends in a file extension."""
    return isinstance(value, str) and bool("/" in value or "\\" in value or _EXTENSION.search(value))


PARAMETER_TYPES: dict[str, type[Parameter]] = {
    cls.parameter_type: cls for cls in (ParameterString, ParameterInteger, ParameterFloat, ParameterBoolean)
}


class ParameterReference(Expression):
    """A reference to a parameter by name, as parsed from a definition (the declaration lives elsewhere)."""

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def expr(self) -> dict[str, Any]:
        """``{"Get": "Parameters.<Name>"}``."""
        return {"Get": f"Parameters.{self.name}"}


def parameter_from_request(declaration: Mapping[str, Any]) -> Parameter:
    """Rebuild a parameter from its definition-JSON declaration."""
    kind = declaration.get("Type")
    if kind not in PARAMETER_TYPES:
        raise PipelineDefinitionError(
            f"parameter {declaration.get('Name')!r} has unknown type {kind!r}; "
            f"expected one of {sorted(PARAMETER_TYPES)}"
        )
    return PARAMETER_TYPES[kind](
        declaration["Name"], declaration.get("DefaultValue"), declaration.get("EnumValues")
    )


def resolve_parameter_values(parameters: Sequence[Parameter], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Merge overrides with defaults, coercing each; refuse unknown names and missing required values."""
    declared = {p.name: p for p in parameters}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))}; "
            f"the pipeline declares {', '.join(declared) or 'none'}"
        )
    values: dict[str, Any] = {}
    for name, parameter in declared.items():
        if name in overrides:
            values[name] = parameter.coerce(overrides[name])
        elif parameter.default_value is not None:
            values[name] = parameter.default_value
        else:
            raise ParameterError(f"parameter {name!r} has no default value; give one with -p {name}=VALUE")
    return values
