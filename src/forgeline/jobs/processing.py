"""Processing jobs: run `python <code> <arguments>` in a staged job directory and collect what it wrote."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from forgeline.errors import JobError
from forgeline.jobs.control import JobControl, ended_by_forgeline
from forgeline.jobs.environments import job_interpreter
from forgeline.jobs.logs import LineCallback
from forgeline.jobs.process import (
    TIMEOUT_GRACE_SECONDS,
    adopted_exit,
    check_command_size,
    failed_script_result,
    run_script,
    script_environment,
    staging_failure,
)
from forgeline.jobs.results import complete_job
from forgeline.jobs.sagemaker_paths import at_opt_ml
from forgeline.jobs.spec import JobResult, JobSpec
from forgeline.jobs.workspace import prepare_workspace

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore


def run_processing_job(
    spec: JobSpec,
    artifacts: ArtifactStore,
    control: JobControl,
    *,
    python: str = sys.executable,
    line_callbacks: Iterable[LineCallback] = (),
    timeout_grace_seconds: float = TIMEOUT_GRACE_SECONDS,
) -> JobResult:
    """Run one processing job to its end and return its result; failures are results, never exceptions."""
    what = _what(spec)
    if control.cause is not None:
        return ended_by_forgeline(control.cause, what, spec.max_run_seconds)
    try:
        workspace = prepare_workspace(spec, artifacts)
        if workspace.code is None:
            raise JobError(f"processing job {spec.job_id} has no code to run")
        interpreter = job_interpreter(spec, python)
        command = [interpreter, str(workspace.code), *spec.arguments]
        env = script_environment(spec, workspace.job_dir)
        check_command_size(command, env, spec)
        ended = run_script(
            at_opt_ml(command, workspace.job_dir) if spec.sagemaker_paths else command,
            cwd=workspace.job_dir,
            env=env,
            log_path=spec.log_path,
            control=control,
            line_callbacks=line_callbacks,
            max_run_seconds=spec.max_run_seconds,
            grace_seconds=timeout_grace_seconds,
        )
    except Exception as exc:  # whatever broke the staging or the start is the reason
        return staging_failure(exc, spec)
    return failed_script_result(ended, what, spec) or complete_job(spec, artifacts, ended.exit_code)


def adopt_processing_job(spec: JobSpec, artifacts: ArtifactStore) -> JobResult | None:
    """The result of a processing job whose script ended while no orchestrator watched it; None if still running."""
    ended = adopted_exit(Path(spec.job_dir), spec.log_path)
    if ended is None:
        return None
    return failed_script_result(ended, _what(spec), spec) or complete_job(spec, artifacts, ended.exit_code)


def _what(spec: JobSpec) -> str:
    return f"script {Path(spec.code).name}" if spec.code else f"processing job {spec.job_id}"
