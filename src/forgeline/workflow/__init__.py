"""The pipeline DSL: the public vocabulary for defining pipelines (pure definitions, no I/O).

Each name is imported from the module that defines it on first use, so that importing one module of the DSL
(the metadata records read ModelApprovalStatus from ``models``) does not import all of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forgeline.lazy_names import lazy_names

if TYPE_CHECKING:
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

_DEFINED_IN: dict[str, str] = {
    **dict.fromkeys((
        "Condition", "ConditionEquals", "ConditionGreaterThan", "ConditionGreaterThanOrEqualTo", "ConditionIn",
        "ConditionLessThan", "ConditionLessThanOrEqualTo", "ConditionNot", "ConditionOr"
    ), "conditions"),
    **dict.fromkeys((
        "ExecutionVariable", "ExecutionVariables", "Format", "Join", "JsonGet", "Property"
    ), "expressions"),
    **dict.fromkeys(("ModelApprovalStatus", "ModelPackage"), "models"),
    **dict.fromkeys((
        "Parameter", "ParameterBoolean", "ParameterFloat", "ParameterInteger", "ParameterString"
    ), "parameters"),
    **dict.fromkeys(("Pipeline",), "pipeline"),
    **dict.fromkeys((
        "CacheConfig", "ParallelismConfiguration", "RetryPolicy", "SelectiveExecutionConfig"
    ), "policies"),
    **dict.fromkeys((
        "ConditionStep", "DelayedReturn", "DeployStep", "EvaluationReportStep", "FailStep", "ForEach",
        "ForEachItem", "FunctionStep", "Model", "ModelMetrics", "ProcessingInput", "ProcessingOutput",
        "ProcessingStep", "PropertyFile", "RegisterModel", "Step", "TrainingInput", "TrainingStep",
        "TransformInput", "TransformStep", "step"
    ), "steps"),
}
"""Every public name (``__all__``) and the module of this package that defines it."""

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


__getattr__, __dir__ = lazy_names(__name__, _DEFINED_IN, globals())
