"""One module per step kind; importing this package registers every kind for deserialisation."""

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

__all__ = [
    "TransformInput", "TransformStep",
    "ForEach", "ForEachItem",
    "ConditionStep", "DelayedReturn", "FailStep", "FunctionStep", "JobStep", "ProcessingInput",
    "ProcessingOutput", "ProcessingStep", "PropertyFile", "Step", "StepFunction", "TrainingInput", "TrainingStep",
    "step",
]
__all__ += ["Model", "ModelMetrics", "RegisterModel"]
__all__ += ["DeployStep", "EvaluationReportStep"]
