"""Typed pipeline parameters and the coercion of overrides given at start time."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from forgeline.errors import ParameterError, PipelineDefinitionError
from forgeline.workflow.expressions import Expression, check_name

_TRUE = {"true", "1", "yes", "y", "on"}
_FALSE = {"false", "0", "no", "n", "off"}


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
        """Convert an override (a Python value, or text from the command line) to this parameter's type."""
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
    """A string parameter."""

    parameter_type = "String"
    python_type = str

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
    """A boolean parameter (overrides accept true/false, yes/no, 1/0)."""

    parameter_type = "Boolean"
    python_type = bool

    def _convert(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise TypeError("true or false is required")


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
