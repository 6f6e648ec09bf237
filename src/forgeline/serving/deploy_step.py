"""DeployStep as a job: its JobSpec runs :mod:`forgeline.serving.jobs.deploy` with the step's resolved models."""

from __future__ import annotations

from pathlib import Path

from forgeline.config import ARTIFACT_ROOT_ENV, DATABASE_URL_ENV, HOME_ENV
from forgeline.engine.jobspecs import JobContext, build_job_spec, resolved_env
from forgeline.engine.resolve import render, resolve
from forgeline.errors import ExpressionError
from forgeline.jobs.spec import JobKind, JobSpec
from forgeline.serving.jobs import deploy
from forgeline.workflow.steps import DeployStep

DEPLOY_SCRIPT = str(Path(deploy.__file__).resolve())
PROPERTIES_FILE = "properties.json"


@build_job_spec.register
def _deploy(step: DeployStep, ctx: JobContext) -> JobSpec:
    endpoint = render(resolve(step.endpoint_name, ctx.resolution))
    arguments = ["--endpoint", endpoint, "--timeout", str(step.timeout), "--content-type", step.content_type,
                 "--properties", PROPERTIES_FILE]
    for stage in step.models:
        model = resolve(stage, ctx.resolution)
        if model is None or model == "":
            raise ExpressionError(f"step {step.name!r}: a model to deploy resolved to nothing")
        arguments += ["--model", render(model)]
    if not step.wait:
        arguments.append("--no-wait")
    if step.server_url:
        arguments += ["--url", step.server_url]
    if step.sample_body is not None:
        arguments += ["--sample-body", step.sample_body]
    settings = ctx.settings  # the job reaches the metadata store this execution uses
    env = {HOME_ENV: str(settings.home), DATABASE_URL_ENV: settings.database_url,
           ARTIFACT_ROOT_ENV: settings.artifact_root, **resolved_env({}, ctx)}
    return JobSpec(
        kind=JobKind.PROCESSING,
        job_id=f"{ctx.execution_id}/{step.name}/{ctx.attempt}",
        job_dir=ctx.job_dir(step.name),
        log_path=ctx.log_path(step.name),
        env=env,
        code=DEPLOY_SCRIPT,
        arguments=tuple(arguments),
        working_dir=ctx.work_dir,
        static_properties={"endpoint_name": endpoint},
        properties_file=PROPERTIES_FILE,
        max_run_seconds=step.timeout + 120,
    )
