"""SageMaker's retry policy spellings become forgeline RetryPolicy values with the documented mapping."""

from __future__ import annotations

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.policies import RetryPolicy
from forgeline.workflow.retry_policies import (
    SageMakerJobExceptionTypeEnum,
    SageMakerJobStepRetryPolicy,
    StepExceptionTypeEnum,
    StepRetryPolicy,
    retry_policy_from_sagemaker,
)


def test_step_retry_policy_retries_infrastructure_errors_with_one_more_attempt_than_retries():
    policy = StepRetryPolicy(exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING],
                             max_attempts=2, interval_seconds=3, backoff_rate=1.5)
    assert policy == RetryPolicy(on=["InfrastructureError"], max_attempts=3, interval_seconds=3.0, backoff_rate=1.5)
    assert not policy.allows("JobFailed", 1)  # a script that exits non-zero is not retried, as on SageMaker


def test_job_retry_policy_maps_capacity_to_interruptions():
    policy = SageMakerJobStepRetryPolicy(exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR],
                                         failure_reason_types=[SageMakerJobExceptionTypeEnum.INTERNAL_ERROR],
                                         max_attempts=1)
    assert list(policy.on) == ["Interrupted", "InfrastructureError"]
    assert policy.max_attempts == 2


def test_definition_entry_as_the_sdk_writes_it():
    request = {"BackoffRate": 2.0, "IntervalSeconds": 1, "MaxAttempts": 4, "ExceptionType": ["SageMaker.RESOURCE_LIMIT"]}
    assert retry_policy_from_sagemaker(request) == RetryPolicy(on=["InfrastructureError"], max_attempts=5,
                                                               interval_seconds=1.0, backoff_rate=2.0)
    assert StepRetryPolicy([StepExceptionTypeEnum.THROTTLING], expire_after_mins=30).max_attempts == 3


def test_unknown_exception_types_are_refused_by_name():
    with pytest.raises(PipelineDefinitionError, match="'Step.NOPE'"):
        StepRetryPolicy(exception_types=["Step.NOPE"])
    with pytest.raises(PipelineDefinitionError, match="at least one"):
        SageMakerJobStepRetryPolicy()
