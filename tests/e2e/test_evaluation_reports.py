"""EvaluationReportStep in a pipeline: a report against nothing, then against the approved model, gated on."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.workflow.models import ModelApprovalStatus

PREPARE = """
    import json, random, sys
    rng = random.Random(int(sys.argv[1]))
    with open("test/test.jsonl", "w") as data, open("predictions/scores.csv", "w") as scores:
        for i in range(400):
            label = int(rng.random() < 0.3)
            noise = rng.gauss(0, float(sys.argv[2]))
            data.write(json.dumps({"x": min(1, max(0, 0.35 + 0.25 * label + rng.gauss(0, 0.25))),
                                   "market": "de" if i % 2 else "fr", "defaulted": label}) + "\\n")
            scores.write(f"{min(1.0, max(0.0, 0.3 + 0.4 * label + noise)):.6f}\\n")
"""

PIPELINE = """
    from forgeline.workflow import (ConditionGreaterThanOrEqualTo, ConditionStep, EvaluationReportStep, FailStep,
                                    ModelPackage, ParameterString, Pipeline, ProcessingOutput, ProcessingStep)

    noise = ParameterString("Noise", default_value="0.15")
    prepare = ProcessingStep(name="Prepare", code="prepare.py", arguments=["3", noise],
                             outputs=[ProcessingOutput(output_name="test", source="test"),
                                      ProcessingOutput(output_name="predictions", source="predictions")])
    report = EvaluationReportStep(
        name="Report", predictions=prepare.properties.outputs["predictions"],
        baseline=ModelPackage.latest_approved("risk", default=None),
        data=prepare.properties.outputs["test"], label="defaulted", task="binary", segment="market",
        title="risk weekly candidate")
    gate = ConditionStep(
        name="Gate",
        conditions=[ConditionGreaterThanOrEqualTo(left=report.properties.metrics["candidate"]["auc"], right=0.8)],
        if_steps=[], else_steps=[FailStep(name="TooWeak", error_message="the candidate's AUC is below 0.8")])
    pipeline = Pipeline(name="reports", parameters=[noise], steps=[prepare, report, gate])
"""

BASELINE = """
def model_fn(model_dir):
    return None

def predict_fn(rows, model):
    return [float(row[0]) for row in rows]

def output_fn(prediction, accept):
    return "".join(f"{value}\\n" for value in prediction)
"""


def _rows_and_scores(project: Any, finished: Any) -> tuple[list[dict[str, Any]], list[float]]:
    outputs = finished.steps["Prepare"].outputs
    rows = [json.loads(line) for line in project.read_output(outputs["test"], "test.jsonl").splitlines()]
    scores = [float(v) for v in project.read_output(outputs["predictions"], "scores.csv").split()]
    return rows, scores


def _register_baseline(project: Any, tmp_path: Path) -> None:
    code, model = tmp_path / "baseline" / "code", tmp_path / "baseline" / "model"
    code.mkdir(parents=True)
    model.mkdir()
    (code / "inference.py").write_text(BASELINE)
    (model / "weights.json").write_text("{}")
    project.store().create_model_package(ModelPackageDraft(
        group="risk", approval_status=ModelApprovalStatus.APPROVED, model_data=str(model), code_uri=str(code),
        entry_point="inference.py", content_types=["text/csv"]), actor="tests")


def test_a_report_without_then_with_a_baseline_gates_the_pipeline(project: Any, tmp_path: Path) -> None:
    project.write("prepare.py", PREPARE)
    project.write("pipeline.py", PIPELINE)

    first = project.run(timeout=180)
    assert first.status == "Succeeded", (first.failure_reason, first.statuses())
    metrics = first.steps["Report"].properties["metrics"]
    rows, scores = _rows_and_scores(project, first)
    labels = [row["defaulted"] for row in rows]
    assert metrics["candidate"]["auc"] == roc_auc_score(labels, scores)
    assert (metrics["baseline"], metrics["difference"], metrics["rows"]) == (None, None, 400)
    assert set(metrics["segments"]) == {"de", "fr"}
    folder = first.steps["Report"].outputs["report"]
    assert project.artifacts().read_bytes(f"{folder}/report.pdf").startswith(b"%PDF")
    assert "risk weekly candidate" in project.read_output(folder, "report.html")

    _register_baseline(project, tmp_path)
    second = project.run(timeout=180)
    assert second.status == "Succeeded", (second.failure_reason, second.statuses())
    report = second.steps["Report"]
    assert report.properties["baseline_package_arn"] == "risk/1"
    metrics = report.properties["metrics"]
    baseline_auc = roc_auc_score(labels, [row["x"] for row in rows])
    assert metrics["baseline"]["auc"] == baseline_auc
    difference = metrics["difference"]["auc"]
    assert difference["value"] == metrics["candidate"]["auc"] - baseline_auc
    assert difference["low"] <= difference["value"] <= difference["high"]

    weak = project.run(parameters={"Noise": "0.6"}, timeout=180)
    assert weak.status == "Failed" and "below 0.8" in (weak.failure_reason or "")
    assert weak.steps["Report"].properties["metrics"]["candidate"]["auc"] < 0.8
    assert np.isfinite(weak.steps["Report"].properties["metrics"]["difference"]["auc"]["value"])


def test_a_bad_input_fails_the_report_step_with_one_line(project: Any) -> None:
    project.write("prepare.py", PREPARE)
    project.write("pipeline.py", PIPELINE.replace('label="defaulted"', 'label="churned"'))
    finished = project.run(timeout=180)
    assert finished.status == "Failed"
    reason = finished.steps["Report"].failure_reason or ""
    assert "the data has no label column 'churned' (its columns: x, market, defaulted)" in reason
    assert "\n" not in reason.strip() and "Traceback" not in reason


def test_a_cached_report_keeps_its_metrics_property_and_records_no_logged_metrics(project: Any) -> None:
    project.write("prepare.py", PREPARE)
    cached = PIPELINE.replace("title=\"risk weekly candidate\")",
                              "title=\"risk weekly candidate\", cache_config=CacheConfig(enable_caching=True))")
    project.write("pipeline.py", "from forgeline.workflow import CacheConfig\n" + textwrap.dedent(cached))
    first = project.run(timeout=180)
    again = project.run(timeout=180)
    assert (first.status, again.status) == ("Succeeded", "Succeeded"), (again.failure_reason, again.statuses())
    report = again.steps["Report"]
    assert report.cache_source == first.execution.id
    assert report.properties["metrics"] == first.steps["Report"].properties["metrics"]
    assert report.metrics == {}  # the report's metrics are a property, not metrics parsed from a log
    assert again.steps["Gate"].properties["outcome"] is True
