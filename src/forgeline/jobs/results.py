"""Building the JobResult a job runner returns: infrastructure failures and the finish of a successful run."""

from __future__ import annotations

import dataclasses
import signal
from typing import TYPE_CHECKING, Any

from forgeline.errors import JobError, JobInputError
from forgeline.jobs.properties import read_properties_file, read_property_files
from forgeline.jobs.spec import FailureKind, JobResult, JobSpec, JobStatus
from forgeline.jobs.workspace import collect_outputs

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore


def infrastructure_failure(exc: BaseException) -> JobResult:
    """A job that forgeline could not prepare, start or collect; the exception becomes its reason."""
    reason = str(exc) if isinstance(exc, JobError) else f"{type(exc).__name__}: {exc}"
    return JobResult(status=JobStatus.FAILED, failure_kind=FailureKind.INFRASTRUCTURE_ERROR, failure_reason=reason)


def failure_of(exc: BaseException) -> JobResult:
    """A job that could not be prepared, started or collected: JobFailed when what the user gave it is at fault."""
    if isinstance(exc, JobInputError):
        return JobResult(status=JobStatus.FAILED, failure_kind=FailureKind.JOB_FAILED, failure_reason=str(exc))
    return infrastructure_failure(exc)


def signal_name(signal_number: int) -> str:
    """``SIGKILL`` for 9; the number itself for a signal Python does not know."""
    try:
        return signal.Signals(signal_number).name
    except ValueError:
        return str(signal_number)


def interrupted(what: str, signal_number: int, exit_code: int | None = None) -> JobResult:
    """A job killed by a signal forgeline did not send (OOM killer, a user's kill)."""
    reason = f"{what} was killed by signal {signal_name(signal_number)}"
    if signal_number == signal.SIGKILL:
        reason += ", which forgeline did not send (the machine may have run out of memory)"
    return JobResult(
        status=JobStatus.FAILED,
        failure_kind=FailureKind.INTERRUPTED,
        failure_reason=reason,
        exit_code=exit_code,
    )


def complete_job(
    spec: JobSpec,
    artifacts: ArtifactStore,
    exit_code: int | None = 0,
    properties: dict[str, Any] | None = None,
) -> JobResult:
    """Finish a job that ran to success: parse its property files, then store its outputs."""
    all_properties = dict(properties or {})
    try:
        if spec.property_files:
            all_properties["PropertyFiles"] = read_property_files(spec)
        if spec.properties_file:
            all_properties.update(read_properties_file(spec))
    except JobError as exc:
        return JobResult(
            status=JobStatus.FAILED,
            failure_kind=FailureKind.JOB_FAILED,
            failure_reason=str(exc),
            exit_code=exit_code,
        )
    try:
        outputs = collect_outputs(spec, artifacts)
    except Exception as exc:  # an output never written, or any storage backend error
        return dataclasses.replace(failure_of(exc), exit_code=exit_code)
    return JobResult(status=JobStatus.SUCCEEDED, outputs=outputs, properties=all_properties, exit_code=exit_code)
