"""SageMaker's retry policy spellings (``StepRetryPolicy``, ``SageMakerJobStepRetryPolicy``) as forgeline RetryPolicy.

SageMaker retries a step on failures of its own service (faults, throttling, capacity, internal errors); on
this machine their counterparts are failures of forgeline's infrastructure (InfrastructureError) and, for
capacity (a reclaimed instance), interruptions. A script that exits non-zero is not retried, as on SageMaker.
SageMaker's ``MaxAttempts`` counts retries; forgeline's ``max_attempts`` counts attempts, so it is one more.
``expire_after_mins`` (a time budget for retries) has no counterpart: without ``max_attempts`` a policy
allows three attempts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.policies import RetryPolicy

DEFAULT_ATTEMPTS = 3


class StepExceptionTypeEnum(Enum):
    """Failures of the pipeline service itself."""

    SERVICE_FAULT = "Step.SERVICE_FAULT"
    THROTTLING = "Step.THROTTLING"


class SageMakerJobExceptionTypeEnum(Enum):
    """Failures of the machines a job runs on."""

    INTERNAL_ERROR = "SageMaker.JOB_INTERNAL_ERROR"
    CAPACITY_ERROR = "SageMaker.CAPACITY_ERROR"
    RESOURCE_LIMIT = "SageMaker.RESOURCE_LIMIT"


FAILURE_KIND_OF: dict[str, str] = {
    StepExceptionTypeEnum.SERVICE_FAULT.value: "InfrastructureError",
    StepExceptionTypeEnum.THROTTLING.value: "InfrastructureError",
    SageMakerJobExceptionTypeEnum.INTERNAL_ERROR.value: "InfrastructureError",
    SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT.value: "InfrastructureError",
    SageMakerJobExceptionTypeEnum.CAPACITY_ERROR.value: "Interrupted",
}
"""forgeline's failure kind for each of SageMaker's retryable exception types."""


def sagemaker_retry_policy(exception_types: Iterable[Any], max_attempts: int | None = None,
                           interval_seconds: float = 1, backoff_rate: float = 2.0) -> RetryPolicy:
    """The RetryPolicy for SageMaker's exception types (enum members or their ``"Step.X"`` values)."""
    kinds: list[str] = []
    for item in exception_types:
        value = item.value if isinstance(item, Enum) else item
        if value not in FAILURE_KIND_OF:
            raise PipelineDefinitionError(
                f"unknown SageMaker retry exception type {value!r}; known: {', '.join(sorted(FAILURE_KIND_OF))}"
            )
        if FAILURE_KIND_OF[value] not in kinds:
            kinds.append(FAILURE_KIND_OF[value])
    if not kinds:
        raise PipelineDefinitionError("a SageMaker retry policy needs at least one exception type")
    if max_attempts is not None and (isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
                                     or max_attempts < 0):
        raise PipelineDefinitionError(f"retry policy max_attempts must be a whole number >= 0, got {max_attempts!r}")
    attempts = DEFAULT_ATTEMPTS if max_attempts is None else max_attempts + 1
    return RetryPolicy(on=kinds, max_attempts=attempts, interval_seconds=float(interval_seconds),
                       backoff_rate=max(float(backoff_rate), 1.0))


def StepRetryPolicy(  # noqa: N802 - SageMaker's class name, so its users change only their imports
    exception_types: Iterable[StepExceptionTypeEnum | str],
    backoff_rate: float = 2.0,
    interval_seconds: float = 1,
    max_attempts: int | None = None,
    expire_after_mins: int | None = None,
) -> RetryPolicy:
    """SageMaker's StepRetryPolicy as a RetryPolicy (service faults and throttling: InfrastructureError)."""
    return sagemaker_retry_policy(exception_types, max_attempts, interval_seconds, backoff_rate)


def SageMakerJobStepRetryPolicy(  # noqa: N802 - SageMaker's class name
    exception_types: Iterable[SageMakerJobExceptionTypeEnum | str] | None = None,
    failure_reason_types: Iterable[SageMakerJobExceptionTypeEnum | str] | None = None,
    backoff_rate: float = 2.0,
    interval_seconds: float = 1,
    max_attempts: int | None = None,
    expire_after_mins: int | None = None,
) -> RetryPolicy:
    """SageMaker's SageMakerJobStepRetryPolicy as a RetryPolicy (capacity errors: Interrupted; others:
    InfrastructureError)."""
    types = [*(exception_types or []), *(failure_reason_types or [])]
    return sagemaker_retry_policy(types, max_attempts, interval_seconds, backoff_rate)


def retry_policy_from_sagemaker(request: Mapping[str, Any]) -> RetryPolicy:
    """A definition's ``RetryPolicies`` entry (``{"ExceptionType": [...], "MaxAttempts": ...}``) as a RetryPolicy."""
    return sagemaker_retry_policy(request.get("ExceptionType", []), request.get("MaxAttempts"),
                                  request.get("IntervalSeconds", 1), request.get("BackoffRate", 2.0))
