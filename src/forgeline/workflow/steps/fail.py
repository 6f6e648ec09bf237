"""FailStep: end the execution as Failed with a (possibly computed) message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from forgeline.workflow.expressions import parse_value, serialize
from forgeline.workflow.steps.base import Step, StepRef


class FailStep(Step):
    """Stop the execution as Failed; no new step starts after it."""

    step_type = "Fail"

    def __init__(
        self,
        name: str,
        error_message: Any = "",
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description)
        self.error_message = error_message

    def arguments(self) -> dict[str, Any]:
        """``{"ErrorMessage": ...}``."""
        return {"ErrorMessage": serialize(self.error_message)}

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> FailStep:
        return cls(error_message=parse_value(request["Arguments"].get("ErrorMessage", "")),
                   **cls.common_kwargs(request))

    def children(self) -> Iterable[Any]:
        """The error message."""
        return [self.error_message]
