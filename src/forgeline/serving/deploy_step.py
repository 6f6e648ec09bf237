"""DeployStep as a job: its JobSpec runs :mod:`forgeline.serving.jobs.deploy` with the step's resolved models."""

from __future__ import annotations

import os

from forgeline.config import ARTIFACT_ROOT_ENV, DATABASE_URL_ENV, HOME_ENV, Settings
from forgeline.engine.jobspecs import JobContext, build_job_spec
from forgeline.engine.resolve import render, resolve
from forgeline.errors import ExpressionError
from forgeline.jobs.placement import forgeline_script
from forgeline.jobs.spec import JobKind, JobSpec
from forgeline.serving.jobs import deploy
from forgeline.workflow.steps import DeployStep

DEPLOY_SCRIPT = forgeline_script(deploy.__file__)
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
    return JobSpec(
        kind=JobKind.PROCESSING,
        **ctx.placement(step.name),
        env=store_environment(ctx.settings),
        code=DEPLOY_SCRIPT,
        arguments=tuple(arguments),
        static_properties={"endpoint_name": endpoint},
        properties_file=PROPERTIES_FILE,
        max_run_seconds=step.timeout + 120,
    )


def store_environment(settings: Settings) -> dict[str, str]:
    """The variables that lead the job to this execution's metadata store (the job inherits the rest).

    A database URL (it may hold a password) is written into the job's environment only when the inherited
    environment would not find the same store by itself.
    """
    env = {HOME_ENV: str(settings.home)}
    inherited = Settings.from_env({**os.environ, HOME_ENV: str(settings.home)})
    if inherited.database_url != settings.database_url:
        env[DATABASE_URL_ENV] = settings.database_url
    if inherited.artifact_root != settings.artifact_root:
        env[ARTIFACT_ROOT_ENV] = settings.artifact_root
    return env
