"""RegisterModel's inline runner: resolve and check the model, copy its code, read metrics, trace lineage, store.

Everything that can fail is checked before anything is written; the code copy is removed again if the package
cannot be stored, so a failed registration leaves neither a package nor stray files behind. The code is staged in
the step's job folder, then published into the artifact store in one rename; a crash between publishing and
storing the package leaves a package folder no package uses, named after its execution, which ``forgeline gc``
removes once that execution has ended.
"""

from __future__ import annotations

import getpass
import json
import os
import re
import secrets
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import singledispatch
from pathlib import Path
from typing import Any

from forgeline.engine.code_snapshot import code_rules_of
from forgeline.engine.fingerprint import Fingerprinter
from forgeline.engine.inline import InlineContext, InlineResult, RunningPipeline, run_inline
from forgeline.engine.resolve import render, resolve
from forgeline.errors import (
    ArtifactNotFoundError,
    ForgelineError,
    JobInputError,
    ModelPackageNotFoundError,
    ModelRegistryError,
)
from forgeline.jobs.code_folder import CodeFolderRules, copy_code_folder
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.records import ModelPackageDraft, ModelPackageRecord
from forgeline.workflow.expressions import JsonGet, Property, walk
from forgeline.workflow.models import check_group_name, parse_approval_status
from forgeline.workflow.steps import Model, ProcessingStep, PropertyFile, RegisterModel, Step, TrainingStep

PACKAGES_FOLDER = "model-packages"
# <artifact root>/model-packages/<group>/<execution id>-<token>/code: the execution says when a leftover is stale
_PACKAGE_FOLDER_NAME = re.compile(r"^(?P<execution>.+)-(?P<token>[0-9a-f]{12})$")


def current_user() -> str:
    """Who is acting: the OS user name, or "unknown" where the platform cannot say."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def package_properties(package: ModelPackageRecord) -> dict[str, Any]:
    """What later steps see of a RegisterModel step (``register.properties.model_package_arn``, …)."""
    return {"model_package_arn": package.arn, "model_package": package.arn, "model_package_version": package.version,
            "model_package_group_name": package.group, "model_approval_status": package.approval_status.value,
            "model_data": package.model_data}


@run_inline.register
def _register_model(step: RegisterModel, ctx: InlineContext) -> InlineResult:
    registration = prepare_registration(step, ctx)
    draft = registration.draft
    earlier = registered_by(ctx, draft.group, step.name)
    if earlier is not None:  # a resumed execution whose orchestrator died right after registering
        return InlineResult(properties=package_properties(earlier))
    try:
        if registration.code is not None and draft.code_uri is not None:
            staging = ctx.settings.jobs_dir / ctx.execution.id / step.name / "code"
            copy_code(registration.code, draft.code_uri, ctx.artifacts, staging, code_rules_of(ctx.settings))
        package = ctx.store.create_model_package(draft, actor=current_user())
    except BaseException:
        if registration.folder is not None:
            ctx.artifacts.delete(registration.folder)
        raise
    return InlineResult(properties=package_properties(package))


def registered_by(ctx: InlineContext, group: str, step_name: str) -> ModelPackageRecord | None:
    """The package this very step of this execution registered already, if any (registration is idempotent)."""
    try:
        packages = ctx.store.list_model_packages(group)
    except ModelPackageNotFoundError:
        return None
    for package in packages:
        lineage = package.lineage or {}
        if lineage.get("execution_id") == ctx.execution.id and lineage.get("step") == step_name:
            return package
    return None


@dataclass(frozen=True)
class InferenceCode:
    """The inference code to copy: a source folder, or the entry point file alone."""

    path: Path
    entry_point: str  # relative to the copied folder


@dataclass(frozen=True)
class Registration:
    """A checked package ready to store, the code to copy first, and the package's own artifact folder."""

    draft: ModelPackageDraft
    code: InferenceCode | None
    folder: str | None  # holds the copied code; removed again when the package cannot be stored


def prepare_registration(step: RegisterModel, ctx: InlineContext) -> Registration:
    """Resolve and check everything a package records; raise ForgelineError before anything is written."""
    res, work_dir = ctx.resolution, ctx.execution.work_dir
    group = check_group_name(render(resolve(step.model_package_group_name, res)))
    status = parse_approval_status(render(resolve(step.approval_status, res)), ModelRegistryError)
    model_data = locate(render(resolve(step.model.model_data, res)), work_dir)
    if not ctx.artifacts.exists(model_data):
        raise ModelRegistryError(f"step {step.name!r}: model_data {model_data} does not exist")
    code = inference_code(step.model, work_dir, step.name)
    description = step.model_package_description
    pipeline = ctx.pipeline  # the running view: inside a ForEach, this iteration's renamed steps
    ancestors = pipeline.graph.ancestors(step.name)
    metrics, metrics_source = read_metrics(step, pipeline, ancestors, ctx)
    lineage = trace_lineage(step, pipeline, ancestors, model_data, ctx)
    if metrics_source is not None:
        lineage["metrics_source"] = metrics_source
    # Named by a random token: the version number is only known once the store has given it out.
    name = f"{ctx.execution.id}-{secrets.token_hex(6)}"
    folder = None if code is None else ctx.artifacts.uri(PACKAGES_FOLDER, group, name)
    code_uri = None if code is None else ctx.artifacts.uri(PACKAGES_FOLDER, group, name, "code")
    draft = ModelPackageDraft(
        group=group, approval_status=status, model_data=model_data, code_uri=code_uri,
        entry_point=None if code is None else code.entry_point, content_types=list(step.content_types),
        response_types=list(step.response_types), metrics=metrics,
        description=None if description is None else render(resolve(description, res)), lineage=lineage,
        accepts_batches=step.accepts_batches,
    )
    return Registration(draft, code, folder)


def locate(location: str, work_dir: str) -> str:
    """A URI as it is; a local path made absolute against the folder the execution was started from."""
    if "://" in location and not location.startswith("file://"):
        return location
    return os.path.normpath(os.path.join(work_dir, location.removeprefix("file://")))


def inference_code(model: Model, work_dir: str, step_name: str) -> InferenceCode | None:
    """The code to copy, after checking the entry point exists (in source_dir when given) and compiles."""
    if model.entry_point is None:
        return None
    if model.source_dir is not None:
        folder = Path(locate(model.source_dir, work_dir))
        if not folder.is_dir():
            raise ModelRegistryError(f"step {step_name!r}: source_dir {folder} is not a folder")
        entry, code = folder / model.entry_point, InferenceCode(folder, model.entry_point)
    else:
        entry = Path(locate(model.entry_point, work_dir))
        code = InferenceCode(entry, entry.name)
    if not entry.is_file():
        raise ModelRegistryError(f"step {step_name!r}: entry point {entry} does not exist")
    try:
        compile(entry.read_bytes(), str(entry), "exec")
    except (SyntaxError, ValueError) as exc:
        raise ModelRegistryError(f"step {step_name!r}: entry point {entry} does not compile: {exc}") from None
    return code


def package_folder_execution(name: str) -> str | None:
    """The execution that made a package folder (``<execution id>-<token>``), or None for another name."""
    match = _PACKAGE_FOLDER_NAME.match(name)
    return None if match is None else match.group("execution")


def copy_code(code: InferenceCode, uri: str, artifacts: ArtifactStore, staging: Path, rules: CodeFolderRules) -> None:
    """Copy the inference code into the artifact store, so later edits of the source do not change the package.

    Staged first (a folder as the code-folder rules say: no FORGELINE_HOME, .git, virtual environments, …),
    then published whole (the artifact store renames it into place); the staging folder goes either way.
    """
    shutil.rmtree(staging, ignore_errors=True)  # what an earlier, crashed attempt left
    try:
        if code.path.is_dir():
            copy_code_folder(code.path, staging, rules)
        else:
            staging.mkdir(parents=True)
            shutil.copy2(code.path, staging / code.entry_point)
        artifacts.put(staging, uri)
    except JobInputError as exc:
        raise ModelRegistryError(f"inference code {code.path}: {exc}") from exc
    except OSError as exc:
        raise ModelRegistryError(f"could not copy the inference code {code.path} to {uri}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staging.parent.rmdir()  # the step's own folder, when nothing else is in it
        except OSError:
            pass


def read_metrics(step: RegisterModel, pipeline: RunningPipeline, ancestors: set[str],
                 ctx: InlineContext) -> tuple[Any, dict[str, Any] | None]:
    """The parsed metrics report and where it came from (None, None without model_metrics)."""
    if step.model_metrics is None:
        return None, None
    source = step.model_metrics.source
    if isinstance(source, PropertyFile):
        return metrics_from_property_file(step, source, pipeline, ancestors, ctx)
    uri = locate(render(resolve(source, ctx.resolution)), ctx.execution.work_dir)
    try:
        return json.loads(ctx.artifacts.read_bytes(uri)), {"uri": uri}
    except ArtifactNotFoundError:
        raise ModelRegistryError(f"step {step.name!r}: metrics report {uri} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ModelRegistryError(f"step {step.name!r}: metrics report {uri} is not readable JSON: {exc}") from None


def metrics_from_property_file(step: RegisterModel, source: PropertyFile, pipeline: RunningPipeline,
                               ancestors: set[str], ctx: InlineContext) -> tuple[Any, dict[str, Any]]:
    """The property file as parsed by the upstream step that declares it."""
    declaring = [s.name for s in pipeline.steps if source.name in s.declared_property_files()]
    owners = [name for name in declaring if name in ancestors]
    if not declaring:
        raise ModelRegistryError(f"step {step.name!r}: no step of pipeline {pipeline.name!r} declares property "
                                 f"file {source.name!r}")
    if not owners:
        raise ModelRegistryError(
            f"step {step.name!r} reads property file {source.name!r} of step {declaring[0]!r}, which does not run "
            f"before it; add depends_on=[{declaring[0]!r}] to the RegisterModel step"
        )
    if len(owners) > 1:
        raise ModelRegistryError(f"step {step.name!r}: property file {source.name!r} is declared by more than one "
                                 f"upstream step ({', '.join(owners)}); give them distinct names")
    document = ctx.resolution.properties_of(owners[0])
    files = document.get("PropertyFiles", {})
    if source.name not in files:
        raise ModelRegistryError(f"step {step.name!r}: step {owners[0]!r} produced no property file {source.name!r}")
    folder = document.get("outputs", {}).get(source.output_name)
    uri = None if folder is None else f"{folder.rstrip('/')}/{source.path}"
    return files[source.name], {"property_file": source.name, "step": owners[0], "uri": uri}


@singledispatch
def data_inputs(step: Step) -> list[tuple[str, Any]]:
    """A step's data inputs as (name, value that may be an expression); none for kinds without data inputs."""
    return []


@data_inputs.register
def _processing_inputs(step: ProcessingStep) -> list[tuple[str, Any]]:
    return [(item.input_name or item.destination, item.source) for item in step.inputs]


@data_inputs.register
def _training_inputs(step: TrainingStep) -> list[tuple[str, Any]]:
    return [(channel, item.s3_data) for channel, item in step.inputs.items()]


class _Fingerprints:
    """Content fingerprints of the locations lineage names, each computed once; None for what cannot be read."""

    def __init__(self, fingerprinter: Fingerprinter) -> None:
        self.fingerprinter = fingerprinter
        self.known: dict[str, str | None] = {}

    def of(self, location: str) -> str | None:
        """The fingerprint of a file, folder or URI, or None when it cannot be read."""
        if location not in self.known:
            try:
                self.known[location] = self.fingerprinter.fingerprint(location)
            except (ForgelineError, OSError):
                self.known[location] = None  # deleted since, or unreadable: lineage keeps the URI
        return self.known[location]


def trace_lineage(step: RegisterModel, pipeline: RunningPipeline, ancestors: set[str], model_data: str,
                  ctx: InlineContext) -> dict[str, Any]:
    """Execution, parameters, and every upstream step's data inputs and outputs with content fingerprints."""
    execution, work_dir = ctx.execution, ctx.execution.work_dir
    runs = {run.name: run for run in ctx.store.list_step_runs(execution.id)}
    fingerprints = _Fingerprints(Fingerprinter(ctx.store, ctx.artifacts.options_by_protocol))
    steps: list[dict[str, Any]] = []
    for name in pipeline.graph.topological_order():
        if name not in ancestors:
            continue
        run = runs.get(name)
        inputs = []
        for input_name, value in data_inputs(pipeline.step(name)):
            try:
                uri = locate(render(resolve(value, ctx.resolution)), work_dir)
            except ForgelineError as exc:
                inputs.append({"name": input_name, "uri": None, "fingerprint": None, "problem": str(exc)})
                continue
            inputs.append({"name": input_name, "uri": uri, "fingerprint": fingerprints.of(uri)})
        outputs = [{"name": output, "uri": uri, "fingerprint": fingerprints.of(uri)}
                   for output, uri in sorted((run.outputs if run else {}).items())]
        steps.append({"name": name, "kind": pipeline.step(name).step_type, "inputs": inputs, "outputs": outputs,
                      "cache_source": run.cache_source if run else None})
    return {
        "pipeline": execution.pipeline_name, "pipeline_version": execution.pipeline_version,
        "execution_id": execution.id, "step": step.name, "parameters": dict(execution.parameters),
        "model_step": next(iter(sorted(referenced_steps([step.model.model_data]))), None),
        "model_data": {"uri": model_data, "fingerprint": fingerprints.of(model_data)},
        "data": source_data(steps), "steps": steps,
    }


def referenced_steps(values: Iterable[Any]) -> set[str]:
    """Names of the steps whose properties these values read."""
    return {node.step_name for node in walk(list(values)) if isinstance(node, (Property, JsonGet))}


def source_data(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Inputs no upstream step produced: the data the model was made from, each location once."""
    produced = [o["uri"] for s in steps for o in s["outputs"]]
    found: dict[str, dict[str, Any]] = {}
    for s in steps:
        for item in s["inputs"]:
            uri = item["uri"]
            if uri is None or uri in found or any(uri == p or uri.startswith(p.rstrip("/") + "/") for p in produced):
                continue
            found[uri] = {"uri": uri, "fingerprint": item["fingerprint"], "step": s["name"], "input": item["name"]}
    return list(found.values())
