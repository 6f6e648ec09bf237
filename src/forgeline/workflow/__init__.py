"""The pipeline DSL: the public vocabulary for defining pipelines (pure definitions, no I/O)."""

from forgeline.workflow.conditions import (
    Condition,
    ConditionEquals,
    ConditionGreaterThan,
    ConditionGreaterThanOrEqualTo,
    ConditionIn,
    ConditionLessThan,
    ConditionLessThanOrEqualTo,
    ConditionNot,
    ConditionOr,
)
from forgeline.workflow.expressions import (
    ExecutionVariable,
    ExecutionVariables,
    Format,
    Join,
    JsonGet,
    Property,
)
from forgeline.workflow.models import ModelApprovalStatus, ModelPackage
from forgeline.workflow.parameters import (
    Parameter,
    ParameterBoolean,
    ParameterFloat,
    ParameterInteger,
    ParameterString,
)
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.policies import (
    CacheConfig,
    ParallelismConfiguration,
    RetryPolicy,
    SelectiveExecutionConfig,
)
from forgeline.workflow.steps import (
    ConditionStep,
    DelayedReturn,
    DeployStep,
    EvaluationReportStep,
    FailStep,
    ForEach,
    ForEachItem,
    FunctionStep,
    Model,
    ModelMetrics,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
    PropertyFile,
    RegisterModel,
    Step,
    TrainingInput,
    TrainingStep,
    TransformInput,
    TransformStep,
    step,
)

__all__ = [
    "TransformInput", "TransformStep",
    "ForEach", "ForEachItem",
    "CacheConfig", "Condition", "ConditionEquals", "ConditionGreaterThan", "ConditionGreaterThanOrEqualTo",
    "ConditionIn", "ConditionLessThan", "ConditionLessThanOrEqualTo", "ConditionNot", "ConditionOr",
    "ConditionStep", "DelayedReturn", "ExecutionVariable", "ExecutionVariables", "FailStep", "Format",
    "FunctionStep", "Join", "JsonGet", "ParallelismConfiguration", "Parameter", "ParameterBoolean",
    "ParameterFloat", "ParameterInteger", "ParameterString", "Pipeline", "ProcessingInput", "ProcessingOutput",
    "ProcessingStep", "Property", "PropertyFile", "RetryPolicy", "SelectiveExecutionConfig", "Step", "TrainingInput",
    "TrainingStep", "step",
]
__all__ += ["Model", "ModelApprovalStatus", "ModelMetrics", "ModelPackage", "RegisterModel"]
__all__ += ["DeployStep", "EvaluationReportStep"]
