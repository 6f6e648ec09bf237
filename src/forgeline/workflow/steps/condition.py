"""ConditionStep: evaluate conditions (all must hold) and run only the chosen branch."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.conditions import Condition
from forgeline.workflow.expressions import Property
from forgeline.workflow.steps.base import Step, StepRef


def as_step(item: Any, owner: str) -> Step:
    """Accept a Step or a @step call's delayed result as a branch member."""
    if isinstance(item, Step):
        return item
    if isinstance(item, Property) and isinstance(item.step, Step):
        return item.step
    raise PipelineDefinitionError(f"ConditionStep {owner!r}: branch members must be steps, got {item!r}")


class ConditionStep(Step):
    """Run ``if_steps`` when every condition holds, else ``else_steps``; the other branch is Skipped."""

    step_type = "Condition"
    exposed_properties = frozenset({"outcome"})

    def __init__(
        self,
        name: str,
        conditions: Sequence[Condition] | None = None,
        if_steps: Sequence[Any] | None = None,
        else_steps: Sequence[Any] | None = None,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description)
        self.conditions = list(conditions or [])
        if any(not isinstance(c, Condition) for c in self.conditions):
            raise PipelineDefinitionError(f"ConditionStep {name!r}: conditions must be Condition values")
        self.if_steps = [as_step(s, name) for s in if_steps or []]
        self.else_steps = [as_step(s, name) for s in else_steps or []]

    def arguments(self) -> dict[str, Any]:
        """Conditions and both branches (nested step definitions, as SageMaker does)."""
        return {
            "Conditions": [c.to_request() for c in self.conditions],
            "IfSteps": [s.to_request() for s in self.if_steps],
            "ElseSteps": [s.to_request() for s in self.else_steps],
        }

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> ConditionStep:
        args = request["Arguments"]
        return cls(
            conditions=[Condition.from_request(c) for c in args.get("Conditions", [])],
            if_steps=[Step.from_request(s) for s in args.get("IfSteps", [])],
            else_steps=[Step.from_request(s) for s in args.get("ElseSteps", [])],
            **cls.common_kwargs(request),
        )

    def children(self) -> Iterable[Any]:
        """The conditions."""
        return self.conditions

    def nested_steps(self) -> list[Step]:
        """Both branches."""
        return [*self.if_steps, *self.else_steps]
