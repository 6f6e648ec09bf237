"""EvaluationReportStep and DeployStep as definitions: their JSON round trip and every option refused at definition."""

from __future__ import annotations

import json

import pytest

from forgeline.errors import PipelineDefinitionError
from forgeline.workflow import (
    DeployStep,
    EvaluationReportStep,
    ModelPackage,
    Pipeline,
    ProcessingOutput,
    ProcessingStep,
)


def _pipeline() -> Pipeline:
    prepare = ProcessingStep(name="Prepare", code="prepare.py",
                             outputs=[ProcessingOutput(output_name="test", source="test"),
                                      ProcessingOutput(output_name="scores", source="scores")])
    report = EvaluationReportStep(name="Report", predictions=prepare.properties.outputs["scores"],
                                  data=prepare.properties.outputs["test"], label="defaulted",
                                  baseline=ModelPackage.latest_approved("payments-de", default=None),
                                  baseline_input="text/csv", segment="market", threshold=0.3, title="weekly")
    deploy = DeployStep(name="Deploy", endpoint_name="risk-de", model=["payments-features/1", "payments-de/2"],
                        sample_body={"amount": 3}, timeout=30, depends_on=[report])
    return Pipeline(name="reports", steps=[prepare, report, deploy], check_files=False)


def test_both_steps_round_trip_through_the_definition_json() -> None:
    definition = _pipeline().definition()
    again = Pipeline.from_definition(json.loads(json.dumps(definition)), check_files=False)
    assert again.definition() == definition
    steps = {s["Name"]: s for s in definition["Steps"]}
    assert steps["Report"]["Type"] == "EvaluationReport"
    assert steps["Report"]["Arguments"]["Baseline"] == {
        "Std:LatestApprovedModelPackage": {"Group": "payments-de", "Default": None}}
    assert steps["Deploy"]["Arguments"]["Models"] == ["payments-features/1", "payments-de/2"]
    assert json.loads(steps["Deploy"]["Arguments"]["SampleBody"]) == {"amount": 3}


@pytest.mark.parametrize(("make", "message"), [
    (lambda: EvaluationReportStep(name="R", predictions="", data="d.csv", label="y"), "predictions must be a path"),
    (lambda: EvaluationReportStep(name="R", predictions="p.csv", data="d.csv", label=""), "label must name"),
    (lambda: EvaluationReportStep(name="R", predictions="p.csv", data="d.csv", label="y", task="ranking"),
     "task must be one of binary, multiclass, regression"),
    (lambda: EvaluationReportStep(name="R", predictions="p.csv", data="d.csv", label="y", baseline="payments"),
     "not a package id like 'group/3'"),
    (lambda: EvaluationReportStep(name="R", predictions="p.csv", data="d.csv", label="y", threshold=1.5),
     "threshold must be between 0 and 1"),
    (lambda: EvaluationReportStep(name="R", predictions="p.csv", data="d.csv", label="y", baseline_input="csv"),
     "baseline_input must be a MIME type"),
    (lambda: DeployStep(name="D", endpoint_name="risk de", model="g/1"), "invalid endpoint name"),
    (lambda: DeployStep(name="D", endpoint_name="risk-de", model=[]), "model must be a registered package"),
    (lambda: DeployStep(name="D", endpoint_name="risk-de", model="g/1", timeout=0), "timeout must be a positive"),
    (lambda: DeployStep(name="D", endpoint_name="risk-de", model="g/1", wait="yes"), "wait must be True or False"),
])
def test_bad_options_are_refused_in_one_line(make, message) -> None:
    with pytest.raises(PipelineDefinitionError, match=message) as caught:
        make()
    assert "\n" not in str(caught.value)
