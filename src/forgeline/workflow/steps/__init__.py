"""One module per step kind, each imported on first use of one of its names (a @step pipeline never imports the
processing or training steps); ``Step.from_request`` imports every kind (``KIND_MODULES``) before it rebuilds one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from forgeline.lazy_names import lazy_names

if TYPE_CHECKING:
    from forgeline.workflow.steps.base import JobStep, Step
    from forgeline.workflow.steps.condition import ConditionStep
    from forgeline.workflow.steps.deploy import DeployStep
    from forgeline.workflow.steps.evaluation_report import EvaluationReportStep
    from forgeline.workflow.steps.fail import FailStep
    from forgeline.workflow.steps.foreach import ForEach, ForEachItem
    from forgeline.workflow.steps.function import DelayedReturn, FunctionStep, StepFunction, step
    from forgeline.workflow.steps.model import Model, ModelMetrics, RegisterModel
    from forgeline.workflow.steps.processing import (
        ProcessingInput,
        ProcessingOutput,
        ProcessingStep,
        PropertyFile,
    )
    from forgeline.workflow.steps.training import TrainingInput, TrainingStep
    from forgeline.workflow.steps.transform import TransformInput, TransformStep

_DEFINED_IN: dict[str, str] = {
    **dict.fromkeys(("JobStep", "Step"), "base"),
    **dict.fromkeys(("ConditionStep",), "condition"),
    **dict.fromkeys(("DeployStep",), "deploy"),
    **dict.fromkeys(("EvaluationReportStep",), "evaluation_report"),
    **dict.fromkeys(("FailStep",), "fail"),
    **dict.fromkeys(("ForEach", "ForEachItem"), "foreach"),
    **dict.fromkeys(("DelayedReturn", "FunctionStep", "StepFunction", "step"), "function"),
    **dict.fromkeys(("Model", "ModelMetrics", "RegisterModel"), "model"),
    **dict.fromkeys(("ProcessingInput", "ProcessingOutput", "ProcessingStep", "PropertyFile"), "processing"),
    **dict.fromkeys(("TrainingInput", "TrainingStep"), "training"),
    **dict.fromkeys(("TransformInput", "TransformStep"), "transform"),
}
"""Every public name (``__all__``) and the module of this package that defines it."""
KIND_MODULES = tuple(sorted(set(_DEFINED_IN.values()) - {"base"}))
"""The modules that define step kinds: importing them all registers every kind for ``Step.from_request``."""

__all__ = [
    "TransformInput", "TransformStep",
    "ForEach", "ForEachItem",
    "ConditionStep", "DelayedReturn", "FailStep", "FunctionStep", "JobStep", "ProcessingInput",
    "ProcessingOutput", "ProcessingStep", "PropertyFile", "Step", "StepFunction", "TrainingInput", "TrainingStep",
    "step",
]
__all__ += ["Model", "ModelMetrics", "RegisterModel"]
__all__ += ["DeployStep", "EvaluationReportStep"]

__getattr__, __dir__ = lazy_names(__name__, _DEFINED_IN, globals())
