"""Conditions for ConditionStep: comparisons, membership, negation and disjunction (a list means AND)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import parse_value, serialize


class Condition:
    """A boolean test evaluated by the engine when its ConditionStep runs."""

    condition_type: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type[Condition]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.condition_type:
            Condition._registry[cls.condition_type] = cls

    def to_request(self) -> dict[str, Any]:
        """The definition-JSON form (``{"Type": ..., ...}``)."""
        raise NotImplementedError

    def children(self) -> Iterable[Any]:
        """Operands (walked to find references)."""
        return ()

    @classmethod
    def from_request(cls, request: Mapping[str, Any]) -> Condition:
        """Rebuild any condition from its definition-JSON form."""
        kind = request.get("Type")
        if kind not in Condition._registry:
            raise PipelineDefinitionError(f"unknown condition type {kind!r}")
        return Condition._registry[kind]._from_request(request)

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> Condition:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Condition) and self.to_request() == other.to_request()

    def __hash__(self) -> int:
        return hash(repr(self.to_request()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_request()!r})"


class ConditionComparison(Condition):
    """``left <op> right``; either side may be an expression or a literal."""

    def __init__(self, left: Any, right: Any) -> None:
        self.left = left
        self.right = right

    def to_request(self) -> dict[str, Any]:
        """``{"Type": ..., "LeftValue": ..., "RightValue": ...}``."""
        return {"Type": self.condition_type, "LeftValue": serialize(self.left),
                "RightValue": serialize(self.right)}

    def children(self) -> Iterable[Any]:
        """Both operands."""
        return (self.left, self.right)

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> Condition:
        return cls(left=parse_value(request["LeftValue"]), right=parse_value(request["RightValue"]))


class ConditionEquals(ConditionComparison):
    """``left == right``."""

    condition_type = "Equals"


class ConditionGreaterThan(ConditionComparison):
    """``left > right``."""

    condition_type = "GreaterThan"


class ConditionGreaterThanOrEqualTo(ConditionComparison):
    """``left >= right``."""

    condition_type = "GreaterThanOrEqualTo"


class ConditionLessThan(ConditionComparison):
    """``left < right``."""

    condition_type = "LessThan"


class ConditionLessThanOrEqualTo(ConditionComparison):
    """``left <= right``."""

    condition_type = "LessThanOrEqualTo"


class ConditionIn(Condition):
    """``value in in_values``."""

    condition_type = "In"

    def __init__(self, value: Any, in_values: list[Any]) -> None:
        if not isinstance(in_values, (list, tuple)):
            raise PipelineDefinitionError("ConditionIn needs a list of in_values")
        self.value = value
        self.in_values = list(in_values)

    def to_request(self) -> dict[str, Any]:
        """``{"Type": "In", "QueryValue": ..., "Values": [...]}``."""
        return {"Type": "In", "QueryValue": serialize(self.value), "Values": serialize(self.in_values)}

    def children(self) -> Iterable[Any]:
        """The queried value and the candidates."""
        return (self.value, *self.in_values)

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> Condition:
        return cls(value=parse_value(request["QueryValue"]), in_values=parse_value(request["Values"]))


class ConditionNot(Condition):
    """The negation of a condition."""

    condition_type = "Not"

    def __init__(self, expression: Condition) -> None:
        if not isinstance(expression, Condition):
            raise PipelineDefinitionError(f"ConditionNot needs a condition, got {expression!r}")
        self.expression = expression

    def to_request(self) -> dict[str, Any]:
        """``{"Type": "Not", "Expression": {...}}``."""
        return {"Type": "Not", "Expression": self.expression.to_request()}

    def children(self) -> Iterable[Any]:
        """The negated condition."""
        return (self.expression,)

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> Condition:
        return cls(Condition.from_request(request["Expression"]))


class ConditionOr(Condition):
    """True when any of the conditions is true."""

    condition_type = "Or"

    def __init__(self, conditions: list[Condition]) -> None:
        if not conditions or not all(isinstance(c, Condition) for c in conditions):
            raise PipelineDefinitionError("ConditionOr needs a non-empty list of conditions")
        self.conditions = list(conditions)

    def to_request(self) -> dict[str, Any]:
        """``{"Type": "Or", "Conditions": [...]}``."""
        return {"Type": "Or", "Conditions": [c.to_request() for c in self.conditions]}

    def children(self) -> Iterable[Any]:
        """The alternatives."""
        return self.conditions

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> Condition:
        return cls([Condition.from_request(c) for c in request["Conditions"]])
