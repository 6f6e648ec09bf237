"""Turn a step and the execution's state into a JobSpec, one builder per step kind."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import singledispatch

from forgeline.config import Settings
from forgeline.engine.resolve import ResolutionContext, render, resolve
from forgeline.errors import PipelineDefinitionError
from forgeline.jobs.spec import CollectedOutput, FunctionRef, JobSpec, PropertyFileSpec, StagedInput
from forgeline.store.artifacts import ArtifactStore
from forgeline.workflow.steps import FunctionStep, ProcessingStep, Step


@dataclass(frozen=True)
class JobContext:
    """Where one attempt of one step lives: its job directory, log file and artifact URIs."""

    execution_id: str
    attempt: int
    settings: Settings
    artifacts: ArtifactStore
    resolution: ResolutionContext
    work_dir: str

    def job_dir(self, step_name: str) -> str:
        """A fresh working directory for this attempt."""
        return str(self.settings.jobs_dir / self.execution_id / step_name / str(self.attempt))

    def log_path(self, step_name: str) -> str:
        """The log file of this attempt."""
        return str(self.settings.logs_dir / self.execution_id / step_name / f"{self.attempt}.log")

    def output_uri(self, step_name: str, output_name: str) -> str:
        """Default artifact URI of a step output."""
        return self.artifacts.uri("executions", self.execution_id, step_name, output_name)

    def local_path(self, path: str) -> str:
        """A user path made absolute against the project folder the execution was started from."""
        return path if os.path.isabs(path) else os.path.join(self.work_dir, path)


@singledispatch
def build_job_spec(step: Step, ctx: JobContext) -> JobSpec:
    """The JobSpec that runs ``step``; every expression is resolved here."""
    raise PipelineDefinitionError(f"step {step.name!r} of type {step.step_type} does not run a job")


def resolved_env(env: dict[str, object], ctx: JobContext) -> dict[str, str]:
    """Environment variables with expressions resolved to text."""
    return {key: render(resolve(value, ctx.resolution)) for key, value in env.items()}


@build_job_spec.register
def _processing(step: ProcessingStep, ctx: JobContext) -> JobSpec:
    source_dir = ctx.local_path(step.source_dir) if step.source_dir else None
    code = os.path.join(source_dir, step.code) if source_dir else ctx.local_path(step.code)
    return JobSpec(
        kind="processing",
        job_id=f"{ctx.execution_id}/{step.name}/{ctx.attempt}",
        job_dir=ctx.job_dir(step.name),
        log_path=ctx.log_path(step.name),
        inputs=tuple(StagedInput(source=render(resolve(i.source, ctx.resolution)), destination=i.destination)
                     for i in step.inputs),
        outputs=tuple(
            CollectedOutput(
                name=o.output_name,
                source=o.source,
                destination=ctx.output_uri(step.name, o.output_name) if o.destination is None
                else render(resolve(o.destination, ctx.resolution)),
            )
            for o in step.outputs
        ),
        property_files=tuple(PropertyFileSpec(p.name, p.output_name, p.path) for p in step.property_files),
        env=resolved_env(step.env, ctx),
        code=code,
        source_dir=source_dir,
        arguments=tuple(render(resolve(a, ctx.resolution)) for a in step.arguments_list),
        working_dir=ctx.work_dir,
    )


@build_job_spec.register
def _function(step: FunctionStep, ctx: JobContext) -> JobSpec:
    ref = step.function
    return JobSpec(
        kind="function",
        job_id=f"{ctx.execution_id}/{step.name}/{ctx.attempt}",
        job_dir=ctx.job_dir(step.name),
        log_path=ctx.log_path(step.name),
        env=resolved_env(step.env, ctx),
        function=FunctionRef(name=ref["Name"], module=ref.get("Module"),
                             file=ctx.local_path(ref["File"]) if ref.get("File") else None),
        args=tuple(resolve(a, ctx.resolution) for a in step.args),
        kwargs={k: resolve(v, ctx.resolution) for k, v in step.kwargs.items()},
        return_uri=ctx.artifacts.uri("executions", ctx.execution_id, step.name, "return.pkl"),
        working_dir=ctx.work_dir,
    )
