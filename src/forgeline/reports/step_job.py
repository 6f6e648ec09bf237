"""EvaluationReportStep as a job: its JobSpec runs :mod:`forgeline.reports.job` on staged inputs."""

from __future__ import annotations

from typing import Any

from forgeline.engine.jobspecs import JobContext, build_job_spec, find_package, resolved_env
from forgeline.engine.resolve import model_package_of, render, resolve
from forgeline.errors import ModelPackageNotFoundError
from forgeline.jobs.placement import forgeline_script
from forgeline.jobs.spec import CollectedOutput, JobKind, JobSpec, StagedInput
from forgeline.reports.jobs import evaluation_report
from forgeline.store.metadata.records import ModelPackageRecord
from forgeline.workflow.models import LatestApprovedModelPackage
from forgeline.workflow.steps import EvaluationReportStep

REPORT_SCRIPT = forgeline_script(evaluation_report.__file__)
PROPERTIES_FILE = "properties.json"


def baseline_package(step: EvaluationReportStep, ctx: JobContext) -> ModelPackageRecord | None:
    """The baseline's package now, or None (no baseline, or latest_approved(..., default=None) with none)."""
    baseline = step.baseline
    if baseline is None:
        return None
    if isinstance(baseline, LatestApprovedModelPackage):
        try:
            return model_package_of(baseline, ctx.resolution)
        except ModelPackageNotFoundError:
            if baseline.has_default and baseline.default is None:
                return None
            raise
    arn = resolve(baseline, ctx.resolution)
    return None if arn is None else find_package(render(arn), ctx.resolution)


@build_job_spec.register
def _evaluation_report(step: EvaluationReportStep, ctx: JobContext) -> JobSpec:
    predictions = render(resolve(step.predictions, ctx.resolution))
    data = render(resolve(step.data, ctx.resolution))
    output_uri = ctx.output_uri(step.name, "report")
    arguments = ["--predictions", "input/predictions", "--data", "input/data", "--label", step.label,
                 "--task", step.task, "--score-field", step.score_field, "--threshold", str(step.threshold),
                 "--title", step.title, "--output", "report", "--properties", PROPERTIES_FILE]
    if step.segment:
        arguments += ["--segment", step.segment]
    if step.id_column:
        arguments += ["--id-column", step.id_column]
    inputs = [StagedInput(ctx.local_path(predictions) if "://" not in predictions else predictions,
                          "input/predictions"),
              StagedInput(ctx.local_path(data) if "://" not in data else data, "input/data")]
    package = baseline_package(step, ctx)
    properties: dict[str, Any] = {"report_uri": output_uri, "baseline_package_arn": None}
    if package is not None:
        inputs.append(StagedInput(package.model_data, "input/baseline/model"))
        arguments += ["--baseline-model", "input/baseline/model", "--baseline-arn", package.arn,
                      "--baseline-input", step.baseline_input or next(iter(package.content_types), "text/csv")]
        if package.code_uri and package.entry_point:
            inputs.append(StagedInput(package.code_uri, "input/baseline/code", code_rules=ctx.code_rules()))
            arguments += ["--baseline-code", "input/baseline/code", "--baseline-entry-point", package.entry_point]
        properties["baseline_package_arn"] = package.arn
    return JobSpec(
        kind=JobKind.PROCESSING,
        **ctx.placement(step.name),
        inputs=tuple(inputs),
        outputs=(CollectedOutput(name="report", source="report", destination=output_uri),),
        env=resolved_env({}, ctx),
        code=REPORT_SCRIPT,
        arguments=tuple(arguments),
        static_properties=properties,
        properties_file=PROPERTIES_FILE,
    )
