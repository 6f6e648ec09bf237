"""Interpreter: which Python a script step runs under (a requirements file built into a virtual env, or a python)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forgeline.errors import PipelineDefinitionError


@dataclass(frozen=True)
class Interpreter:
    """A script step's Python: ``requirements`` installed once into a reusable virtual environment, on top of
    ``python`` (a path or a command name) or of forgeline's own interpreter when neither is given."""

    requirements: str | None = None
    python: str | None = None

    def check(self, step_name: str) -> Interpreter:
        """Refuse values that are not non-empty strings; returns self."""
        for option, value in (("requirements", self.requirements), ("python", self.python)):
            if value is not None and (not isinstance(value, str) or not value):
                raise PipelineDefinitionError(
                    f"step {step_name!r}: {option} must be a non-empty path, got {value!r}"
                )
        return self

    def to_request(self) -> dict[str, Any]:
        """The ``Requirements`` and ``Python`` arguments that are set."""
        request: dict[str, Any] = {}
        if self.requirements is not None:
            request["Requirements"] = self.requirements
        if self.python is not None:
            request["Python"] = self.python
        return request

    @classmethod
    def from_request(cls, arguments: Mapping[str, Any]) -> Interpreter:
        """Inverse of :meth:`to_request`, read from a step's ``Arguments``."""
        return cls(requirements=arguments.get("Requirements"), python=arguments.get("Python"))

    def files(self) -> list[str]:
        """Files that must exist when the pipeline is defined (the requirements file)."""
        return [self.requirements] if self.requirements else []
