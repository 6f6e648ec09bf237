"""Processing jobs: run `python <code> <arguments>` in a staged job directory and collect what it wrote."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from forgeline.errors import JobError
from forgeline.jobs.control import JobControl, ended_by_forgeline
from forgeline.jobs.logs import LineCallback, LogCapture
from forgeline.jobs.results import complete_job, infrastructure_failure, interrupted
from forgeline.jobs.spec import FailureKind, JobResult, JobSpec, JobStatus
from forgeline.jobs.workspace import CODE_FOLDER, Workspace, prepare_workspace

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore

TIMEOUT_GRACE_SECONDS = 10.0
"""How long a job past its max_run_seconds gets between SIGTERM and SIGKILL."""

LINGERING_PIPE_SECONDS = 2.0
"""How long to keep reading logs after the script exited while a child it left behind holds its pipes."""


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
    what = f"script {Path(spec.code).name}" if spec.code else f"processing job {spec.job_id}"
    if control.cause is not None:
        return ended_by_forgeline(control.cause, what, spec.max_run_seconds)
    try:
        workspace = prepare_workspace(spec, artifacts)
        capture = LogCapture(spec.log_path, line_callbacks)
    except Exception as exc:  # whatever broke the staging is the reason
        return infrastructure_failure(exc)
    try:
        process = _spawn(spec, workspace, python)
    except Exception as exc:
        capture.close()
        return infrastructure_failure(exc)
    capture.start(process)
    control.attach(process)
    if spec.max_run_seconds is not None:
        control.expire_after(spec.max_run_seconds, timeout_grace_seconds)
    try:
        exit_code = process.wait()
    finally:
        cause = control.release()
    capture.join(LINGERING_PIPE_SECONDS)
    if cause is not None:
        return dataclasses.replace(ended_by_forgeline(cause, what, spec.max_run_seconds), exit_code=exit_code)
    if exit_code < 0:
        return interrupted(what, -exit_code, exit_code)
    if exit_code > 0:
        return JobResult(
            status=JobStatus.FAILED,
            failure_kind=FailureKind.JOB_FAILED,
            failure_reason=_exit_reason(what, exit_code, capture.stderr_tail, spec.log_path),
            exit_code=exit_code,
        )
    return complete_job(spec, artifacts, exit_code)


def _spawn(spec: JobSpec, workspace: Workspace, python: str) -> subprocess.Popen[bytes]:
    if workspace.code is None:
        raise JobError(f"processing job {spec.job_id} has no code to run")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
    if spec.source_dir is not None:
        # Modules at the top of source_dir import as they did on the user's machine, wherever the script sits.
        code_dir = str(workspace.job_dir / CODE_FOLDER)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [code_dir, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [python, str(workspace.code), *spec.arguments],
        cwd=workspace.job_dir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, so stop and timeout reach its children too
    )


def _exit_reason(what: str, exit_code: int, stderr_tail: list[str], log_path: str) -> str:
    if not stderr_tail:
        return f"{what} exited with code {exit_code} and wrote nothing to stderr; see its log {log_path}"
    return f"{what} exited with code {exit_code}: " + "\n".join(stderr_tail)
