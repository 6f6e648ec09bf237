"""Turn a step and the execution's state into a JobSpec, one builder per step kind."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import singledispatch
from typing import Any, TypedDict

from forgeline.config import Settings
from forgeline.engine.code_snapshot import code_rules_of, folder_snapshot_name, snapshot_name
from forgeline.engine.resolve import ResolutionContext, model_package_of, render, resolve
from forgeline.engine.step_kinds import load_step_kinds
from forgeline.errors import ExpressionError, PipelineDefinitionError
from forgeline.jobs.code_folder import CodeFolderRules
from forgeline.jobs.placement import FORGELINE_PACKAGE, SNAPSHOT_ROOT, forgeline_script
from forgeline.jobs.spec import (
    CollectedOutput,
    FunctionRef,
    JobKind,
    JobSpec,
    MetricDefinition,
    PropertyFileSpec,
    StagedInput,
    TrainingSpec,
)
from forgeline.jobs.training import channel_destination, training_outputs
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.records import ModelPackageRecord
from forgeline.workflow.models import LatestApprovedModelPackage, parse_package_arn
from forgeline.workflow.steps import FunctionStep, JobStep, ProcessingStep, Step, TrainingStep
from forgeline.workflow.steps.interpreter import Interpreter
from forgeline.workflow.steps.model import Model
from forgeline.workflow.steps.processing import job_relative
from forgeline.workflow.steps.resources import check_resources
from forgeline.workflow.steps.transform import TransformStep


def job_id(execution_id: str, step_name: str, attempt: int) -> str:
    """The id of one attempt's job, ``<execution>/<step>/<attempt>``: executors name (and find) jobs by it."""
    return f"{execution_id}/{step_name}/{attempt}"


class JobPlacement(TypedDict):
    """The part of a JobSpec every job kind fills alike: its id, its code snapshot and the user's working folder.

    The job folder and log are not in it: where a job runs is its executor's business (jobs/placement.py).
    """

    job_id: str
    code_snapshot: str | None
    working_dir: str


@dataclass(frozen=True)
class JobContext:
    """One attempt of one step: its id, the code snapshot it runs, where its data paths resolve, its artifact URIs.

    ``code_snapshot`` None (an execution recorded before snapshots, or a plan): code is named by absolute path
    in ``work_dir``, as it is on disk now.
    """

    execution_id: str
    attempt: int
    settings: Settings
    artifacts: ArtifactStore
    resolution: ResolutionContext
    work_dir: str
    code_snapshot: str | None = None

    def placement(self, step_name: str) -> JobPlacement:
        """The fields every job spec of this attempt shares (``JobSpec(**placement)``)."""
        return JobPlacement(job_id=job_id(self.execution_id, step_name, self.attempt),
                            code_snapshot=self.code_snapshot, working_dir=self.work_dir)

    def code_path(self, path: str) -> str:
        """A path of code the user gave: inside the code snapshot (relative), else absolute in the working folder."""
        if self.code_snapshot is None:
            return self.local_path(path)
        return snapshot_name(path, self.work_dir)

    def code_folder(self, path: str) -> str:
        """A code folder the user gave: its path inside the code snapshot ("." for the whole), else absolute."""
        if self.code_snapshot is None:
            return self.local_path(path)
        return folder_snapshot_name(path, self.work_dir) or SNAPSHOT_ROOT

    def output_uri(self, step_name: str, output_name: str) -> str:
        """Default artifact URI of a step output."""
        return self.artifacts.uri("executions", self.execution_id, step_name, output_name)

    def local_path(self, path: str) -> str:
        """A user data path made absolute against the working folder the execution was started from."""
        return path if os.path.isabs(path) else os.path.join(self.work_dir, path)

    def code_rules(self) -> CodeFolderRules:
        """What a code folder leaves out and its size limit; a snapshot left this machine's folders out already."""
        rules = code_rules_of(self.settings)
        return CodeFolderRules(max_bytes=rules.max_bytes) if self.code_snapshot else rules


@singledispatch
def build_job_spec(step: Step, ctx: JobContext) -> JobSpec:
    """The JobSpec that runs ``step``; every expression is resolved here."""
    if load_step_kinds():  # a kind built above the engine (an evaluation report, a deployment)
        return build_job_spec(step, ctx)
    raise PipelineDefinitionError(f"step {step.name!r} of type {step.step_type} does not run a job")


def resolved_env(env: dict[str, object], ctx: JobContext) -> dict[str, str]:
    """Environment variables with expressions resolved to text."""
    return {key: render(resolve(value, ctx.resolution)) for key, value in env.items()}


def script_paths(code: str, source_dir: str | None, ctx: JobContext) -> tuple[str, str | None]:
    """A script step's script and source folder (None without one), as JobSpec names code."""
    if not source_dir:
        return ctx.code_path(code), None
    folder = ctx.code_folder(source_dir)
    return os.path.normpath(os.path.join(folder, code)), folder


class InterpreterFields(TypedDict):
    """The JobSpec fields that choose a script's Python."""

    python: str | None
    requirements: str | None
    envs_dir: str | None


def interpreter_fields(interpreter: Interpreter, ctx: JobContext) -> InterpreterFields:
    """JobSpec fields choosing a script's Python: a requirements file (code) and a python path or command."""
    python = interpreter.python
    if python is not None and os.sep in python:
        python = ctx.local_path(python)
    requirements = ctx.code_path(interpreter.requirements) if interpreter.requirements else None
    return InterpreterFields(python=python, requirements=requirements, envs_dir=None)


class ResourceFields(TypedDict):
    """The JobSpec fields that say where a job may run."""

    resources: dict[str, float]
    instance_type: str | None
    instance_count: int


def resource_fields(step: JobStep, instance_type: Any, instance_count: Any, ctx: JobContext) -> ResourceFields:
    """A step's ``resources`` (as Ray counts them), its instance type and how many instances it asks for."""
    kind = resolve(instance_type, ctx.resolution)
    count = resolve(instance_count, ctx.resolution)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ExpressionError(f"step {step.name!r}: instance_count must be a positive integer, got {count!r}")
    return ResourceFields(resources=check_resources(f"step {step.name!r}", step.resources),
                          instance_type=None if kind is None else render(kind), instance_count=count)


@build_job_spec.register
def _processing(step: ProcessingStep, ctx: JobContext) -> JobSpec:
    code, source_dir = script_paths(step.code, step.source_dir, ctx)
    return JobSpec(
        kind=JobKind.PROCESSING,
        **ctx.placement(step.name),
        inputs=tuple(StagedInput(source=render(resolve(i.source, ctx.resolution)),
                                 destination=job_relative(i.destination))
                     for i in step.inputs),
        outputs=tuple(
            CollectedOutput(
                name=o.output_name,
                source=job_relative(o.source),
                destination=ctx.output_uri(step.name, o.output_name) if o.destination is None
                else render(resolve(o.destination, ctx.resolution)),
                optional=o.optional,
            )
            for o in step.outputs
        ),
        property_files=tuple(PropertyFileSpec(p.name, p.output_name, p.path) for p in step.property_files),
        env=resolved_env(step.env, ctx),
        code=code,
        source_dir=source_dir,
        code_rules=ctx.code_rules(),
        arguments=tuple(render(resolve(a, ctx.resolution)) for a in step.arguments_list),
        sagemaker_paths=step.sagemaker_paths,
        **interpreter_fields(step.interpreter, ctx),
        **resource_fields(step, step.instance_type, step.instance_count, ctx),
    )


@build_job_spec.register
def _training(step: TrainingStep, ctx: JobContext) -> JobSpec:
    code, source_dir = script_paths(step.entry_point, step.source_dir, ctx)
    checkpoint = render(resolve(step.checkpoint_uri, ctx.resolution)) if step.checkpoint_uri is not None else ""
    if not checkpoint:
        checkpoint = ctx.output_uri(step.name, "checkpoints")  # a fresh folder per execution
    elif "://" not in checkpoint:
        checkpoint = ctx.local_path(checkpoint)
    instance_type = resolve(step.instance_type, ctx.resolution)
    return JobSpec(
        kind=JobKind.TRAINING,
        **ctx.placement(step.name),
        inputs=tuple(StagedInput(source=render(resolve(channel.s3_data, ctx.resolution)),
                                 destination=channel_destination(name)) for name, channel in step.inputs.items()),
        outputs=training_outputs(model_uri=ctx.output_uri(step.name, "model.tar.gz"),
                                 output_data_uri=ctx.output_uri(step.name, "output_data")),
        env=resolved_env(step.environment, ctx),
        code=code,
        source_dir=source_dir,
        code_rules=ctx.code_rules(),
        max_run_seconds=step.max_run,
        sagemaker_paths=step.sagemaker_paths,
        **interpreter_fields(step.interpreter, ctx),
        **resource_fields(step, step.instance_type, 1, ctx),  # one instance: distributed training is not sharded
        training=TrainingSpec(
            checkpoint_uri=checkpoint,
            channels=tuple(step.inputs),
            hyperparameters={name: resolve(value, ctx.resolution) for name, value in step.hyperparameters.items()},
            metric_definitions=tuple(MetricDefinition(d["Name"], d["Regex"]) for d in step.metric_definitions),
            restart_on_interruption=step.use_spot_instances,
            max_wait_seconds=step.max_wait,
            instance_type=None if instance_type is None else render(instance_type),
            instance_count=int(resolve(step.instance_count, ctx.resolution)),
        ),
    )


@build_job_spec.register
def _function(step: FunctionStep, ctx: JobContext) -> JobSpec:
    ref = step.function
    return JobSpec(
        kind=JobKind.FUNCTION,
        **ctx.placement(step.name),
        env=resolved_env(step.env, ctx),
        function=FunctionRef(name=ref["Name"], module=ref.get("Module"),
                             file=ctx.code_path(ref["File"]) if ref.get("File") else None),
        args=tuple(resolve(a, ctx.resolution) for a in step.args),
        kwargs={k: resolve(v, ctx.resolution) for k, v in step.kwargs.items()},
        return_uri=ctx.artifacts.uri("executions", ctx.execution_id, step.name, "return.pkl"),
        **resource_fields(step, step.instance_type, 1, ctx),
    )


# Named by its path, not imported: its imports (the model loader, process pools) are for the job alone.
BATCH_TRANSFORM_SCRIPT = forgeline_script(FORGELINE_PACKAGE / "jobs" / "entrypoints" / "batch_transform.py")


def transform_model(step: TransformStep, ctx: JobContext) -> tuple[StagedModel, dict[str, Any]]:
    """Where the step's model and inference code are, and the properties that say which model it was."""
    model = step.model
    if isinstance(model, Model):
        data = render(resolve(model.model_data, ctx.resolution))
        code = ctx.code_folder(model.source_dir) if model.source_dir else (
            ctx.code_folder(os.path.dirname(ctx.local_path(model.entry_point))) if model.entry_point else None)
        entry = os.path.basename(model.entry_point) if model.entry_point and not model.source_dir \
            else model.entry_point
        return StagedModel(data, code, entry), {"model_data": data}
    if isinstance(model, LatestApprovedModelPackage):
        package = model_package_of(model, ctx.resolution)
    else:
        package = find_package(render(resolve(model, ctx.resolution)), ctx.resolution)
    properties = {"model_data": package.model_data, "model_package_arn": package.arn}
    return StagedModel(package.model_data, package.code_uri, package.entry_point), properties


@build_job_spec.register
def _transform(step: TransformStep, ctx: JobContext) -> JobSpec:
    model, properties = transform_model(step, ctx)
    data = render(resolve(step.inputs.data, ctx.resolution))
    output_uri = (ctx.output_uri(step.name, "output") if step.output_path is None
                  else render(resolve(step.output_path, ctx.resolution)))
    arguments = ["--input", "input/data", "--output", "output", "--model", "model",
                 "--content-type", step.inputs.content_type, "--split-type", step.inputs.split_type,
                 "--strategy", step.strategy, "--max-payload-mb", str(step.max_payload_mb),
                 "--assemble-with", step.assemble_with, "--join-source", step.join_source,
                 "--workers", str(step.workers(resolve(step.instance_count, ctx.resolution)))]
    inputs = [StagedInput(data, "input/data", sharded=True), StagedInput(model.data, "model")]
    if model.code:
        inputs.append(StagedInput(model.code, "code", code_rules=ctx.code_rules()))
        arguments += ["--code", "code", "--entry-point", model.entry_point or ""]
    if step.accept:
        arguments += ["--accept", step.accept]
    return JobSpec(
        kind=JobKind.PROCESSING,
        **ctx.placement(step.name),
        inputs=tuple(inputs),
        outputs=(CollectedOutput(name="output", source="output", destination=output_uri),),
        env=resolved_env(step.env, ctx),
        code=BATCH_TRANSFORM_SCRIPT,
        arguments=tuple(arguments),
        static_properties={**properties, "output_uri": output_uri},
        **resource_fields(step, step.instance_type, step.instance_count, ctx),
    )


@dataclass(frozen=True)
class StagedModel:
    """A model's artifacts, the folder of its inference code and the entry point in it."""

    data: str
    code: str | None
    entry_point: str | None


def find_package(arn: str, ctx: ResolutionContext) -> ModelPackageRecord:
    """A registered package by ``<group>/<version>``."""
    parsed = parse_package_arn(arn)
    if parsed is None:
        raise ExpressionError(f"{arn!r} is not a model package id like 'group/3'")
    if ctx.find_model_package is None:
        raise ExpressionError(f"model package {arn!r} cannot be looked up here (no registry available)")
    return ctx.find_model_package(*parsed)
