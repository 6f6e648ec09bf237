"""EvaluationReportStep: the candidate's predictions against a baseline model on the same labelled data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow.expressions import Expression, parse_value, serialize
from forgeline.workflow.models import LatestApprovedModelPackage, parse_package_arn
from forgeline.workflow.policies import CacheConfig, RetryPolicy
from forgeline.workflow.steps.base import JobStep, StepRef

REPORT_TASKS = ("binary", "multiclass", "regression")


class EvaluationReportStep(JobStep):
    """Write report.html and report.pdf (output ``report``); expose the metrics as ``properties.metrics``."""

    step_type = "EvaluationReport"
    exposed_properties = frozenset({"metrics", "outputs", "report_uri", "baseline_package_arn"})

    def __init__(
        self,
        name: str,
        predictions: Any,
        data: Any,
        label: str,
        task: str = "binary",
        baseline: Any = None,
        baseline_input: str | None = None,
        score_field: str = "score",
        threshold: float = 0.5,
        segment: str | None = None,
        id_column: str | None = None,
        title: str | None = None,
        depends_on: Sequence[StepRef] | None = None,
        display_name: str | None = None,
        description: str | None = None,
        cache_config: CacheConfig | None = None,
        retry_policies: Sequence[RetryPolicy] | None = None,
    ) -> None:
        super().__init__(name, depends_on, display_name, description, cache_config, retry_policies)
        for option, value in (("predictions", predictions), ("data", data)):
            if not isinstance(value, (str, Expression)) or value == "":
                raise PipelineDefinitionError(f"step {name!r}: {option} must be a path, URI or step property, "
                                              f"got {value!r}")
        if not isinstance(label, str) or not label:
            raise PipelineDefinitionError(f"step {name!r}: label must name the label column, got {label!r}")
        if task not in REPORT_TASKS:
            raise PipelineDefinitionError(f"step {name!r}: task must be one of {', '.join(REPORT_TASKS)}, "
                                          f"got {task!r}")
        if baseline is not None and not isinstance(baseline, (LatestApprovedModelPackage, Expression, str)):
            raise PipelineDefinitionError(f"step {name!r}: baseline must be ModelPackage.latest_approved(...), a "
                                          f"package id like 'group/3', or None, got {baseline!r}")
        if isinstance(baseline, str) and parse_package_arn(baseline) is None:
            raise PipelineDefinitionError(f"step {name!r}: baseline {baseline!r} is not a package id like 'group/3'")
        if baseline_input is not None and (not isinstance(baseline_input, str) or "/" not in baseline_input):
            raise PipelineDefinitionError(f"step {name!r}: baseline_input must be a MIME type like 'text/csv', "
                                          f"got {baseline_input!r}")
        if not isinstance(threshold, (int, float)) or not 0 < threshold < 1:
            raise PipelineDefinitionError(f"step {name!r}: threshold must be between 0 and 1, got {threshold!r}")
        self.predictions = predictions
        self.data = data
        self.label = label
        self.task = task
        self.baseline = baseline
        self.baseline_input = baseline_input
        self.score_field = score_field
        self.threshold = float(threshold)
        self.segment = segment
        self.id_column = id_column  # checked row for row against the predictions' ids, when given
        self.title = title or f"{name}: evaluation report"

    def arguments(self) -> dict[str, Any]:
        """Inputs, label, task, baseline and presentation options."""
        return {
            "Predictions": serialize(self.predictions), "Data": serialize(self.data), "Label": self.label,
            "Task": self.task, "Baseline": serialize(self.baseline), "BaselineInput": self.baseline_input,
            "ScoreField": self.score_field, "Threshold": self.threshold, "Segment": self.segment,
            "IdColumn": self.id_column, "Title": self.title,
        }

    @classmethod
    def _from_request(cls, request: Mapping[str, Any]) -> EvaluationReportStep:
        args = request["Arguments"]
        return cls(
            predictions=parse_value(args["Predictions"]), data=parse_value(args["Data"]), label=args["Label"],
            task=args.get("Task", "binary"), baseline=parse_value(args.get("Baseline")),
            baseline_input=args.get("BaselineInput"), score_field=args.get("ScoreField", "score"),
            threshold=args.get("Threshold", 0.5), segment=args.get("Segment"), id_column=args.get("IdColumn"),
            title=args.get("Title"),
            **cls.common_kwargs(request),
        )

    def children(self) -> Iterable[Any]:
        """The predictions, the data and the baseline expression."""
        return [self.predictions, self.data, self.baseline]
