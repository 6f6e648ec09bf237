"""Import a SageMaker pipeline definition as a forgeline Pipeline, or report step by step what would map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.sagemaker.check import StepReport, mapped
from forgeline.sagemaker.code_lookup import CodeFinder
from forgeline.sagemaker.containers import ContainerRuntime, ContainerTable
from forgeline.sagemaker.document import parse_document, walk_steps, written_by_forgeline
from forgeline.sagemaker.function_steps import is_function_step, user_requirements
from forgeline.sagemaker.s3 import S3Map
from forgeline.sagemaker.steps import ImportContext, Unmappable, fold, is_repack, map_step
from forgeline.workflow.parameters import parameter_from_request
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.policies import ParallelismConfiguration

DEFAULT_NAME = "sagemaker-pipeline"
"""The name of an imported pipeline when none is given (SageMaker keeps the name outside the definition)."""

FOLDED = {
    "Model": "its container becomes the model of the Transform steps that name it",
    "Repack": "the SDK's model repack: the inference code goes with the model (forgeline loads code and "
              "artifacts separately)",
}


def import_context(code_root: str = ".", s3_map: Mapping[str, str] | None = None,
                   images: Mapping[str, str | ContainerRuntime] | None = None,
                   lambdas: Mapping[str, str] | None = None) -> ImportContext:
    """What mapping needs: the code root, the S3 roots (relative folders: to the current folder), images, Lambdas."""
    return ImportContext(CodeFinder(code_root, S3Map.of(s3_map or {})), ContainerTable(images), dict(lambdas or {}))


def check_definition(document: str | bytes | Mapping[str, Any], code_root: str = ".",
                     s3_map: Mapping[str, str] | None = None,
                     images: Mapping[str, str | ContainerRuntime] | None = None,
                     lambdas: Mapping[str, str] | None = None) -> list[StepReport]:
    """For each step (condition branches too), what it becomes in forgeline or why it cannot map; runs nothing."""
    doc = parse_document(document)
    if written_by_forgeline(doc):
        pipeline = Pipeline.from_definition(doc)
        return [StepReport(s.name, s.step_type, "maps", f"{type(s).__name__} (a forgeline definition)")
                for s in pipeline.steps]
    ctx = import_context(code_root, s3_map, images, lambdas)
    fold(list(walk_steps(doc["Steps"])), ctx)
    reports = []
    for request in walk_steps(doc["Steps"]):
        name, kind = str(request.get("Name")), str(request.get("Type"))
        if request.get("Type") == "Condition":  # its branch steps get reports of their own
            arguments = {**request.get("Arguments", {}), "IfSteps": [], "ElseSteps": []}
            request = {**request, "Arguments": arguments}
        try:
            step = map_step(request, ctx)
        except Unmappable as exc:
            reports.append(StepReport(name, kind, "cannot map", exc.reason))
            continue
        report = mapped(name, kind, step, FOLDED["Repack" if is_repack(request) else "Model"])
        needs = user_requirements(request) if is_function_step(request) else None
        if needs:
            report = replace(report, detail=f"{report.detail}; install {needs} into this interpreter first")
        reports.append(report)
    return reports


def import_definition(document: str | bytes | Mapping[str, Any], code_root: str = ".",
                      s3_map: Mapping[str, str] | None = None, name: str | None = None,
                      images: Mapping[str, str | ContainerRuntime] | None = None,
                      lambdas: Mapping[str, str] | None = None) -> Pipeline:
    """The forgeline pipeline of a SageMaker definition; refuses, naming every step that cannot map."""
    doc = parse_document(document)
    if written_by_forgeline(doc):  # a round trip: forgeline's own definition() comes back as it was
        return Pipeline.from_definition({**doc, "Name": name or doc["Name"]})
    refused = [r for r in check_definition(doc, code_root, s3_map, images, lambdas) if not r.maps]
    if refused:
        raise PipelineDefinitionError(
            "cannot import this SageMaker pipeline: "
            + "; ".join(f"step {r.name!r} ({r.kind}): {r.detail}" for r in refused)
            + " (`forgeline import sagemaker --check` lists every step)"
        )
    ctx = import_context(code_root, s3_map, images, lambdas)
    fold(list(walk_steps(doc["Steps"])), ctx)
    steps = [s for s in (map_step(r, ctx) for r in doc["Steps"]) if s is not None]
    parameters = [parameter_from_request({**p, "DefaultValue": ctx.translator.json(p.get("DefaultValue"))})
                  for p in doc.get("Parameters", [])]
    parallelism = ParallelismConfiguration.from_request(doc.get("ParallelismConfiguration") or {})
    return Pipeline(name=name or doc.get("Name") or DEFAULT_NAME, parameters=parameters, steps=steps,
                    parallelism_config=parallelism, description=doc.get("Description"), check_files=True)
