"""The import check: for each SageMaker step, what it becomes in forgeline or why it cannot map."""

from __future__ import annotations

from dataclasses import dataclass

from forgeline.sagemaker.function_steps import RUNNER
from forgeline.workflow.steps import Step


@dataclass(frozen=True)
class StepReport:
    """One step of a SageMaker definition and its fate: ``maps``, ``folded`` or ``cannot map``."""

    name: str
    kind: str
    outcome: str
    detail: str

    @property
    def maps(self) -> bool:
        """Whether the step imports (as a step of its own or folded into others)."""
        return self.outcome != "cannot map"


def mapped(name: str, kind: str, step: Step | None, folded_into: str) -> StepReport:
    """The report of a step that imports."""
    if step is None:
        return StepReport(name, kind, "folded", folded_into)
    detail = f"{type(step).__name__}"
    runtime = getattr(step, "interpreter", None)
    if runtime is not None and runtime.requirements:
        detail += f" (environment from {runtime.requirements})"
    if getattr(step, "sagemaker_paths", False):
        detail += ", code sees /opt/ml"
    if getattr(step, "function", None) == RUNNER:
        detail += " (the function the SDK stored, called by this interpreter)"
    return StepReport(name, kind, "maps", detail)


def format_reports(reports: list[StepReport]) -> list[str]:
    """One aligned line per step."""
    width = max((len(r.name) for r in reports), default=4)
    kinds = max((len(r.kind) for r in reports), default=4)
    return [f"{r.name:<{width}}  {r.kind:<{kinds}}  {r.outcome:<10}  {r.detail}" for r in reports]
