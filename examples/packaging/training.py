# examples/packaging/training.py
# Weekly training: one model per package type, compared with the approved one before it may replace it.
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from forgeline.workflow import (
    Pipeline, ParameterString, ParameterFloat, ParameterInteger,
    ProcessingStep, ProcessingInput, ProcessingOutput, PropertyFile, JsonGet, Join,
    TrainingStep, TrainingInput, TransformStep, TransformInput,
    Model, ModelMetrics, ModelPackage, RegisterModel, ForEach, ForEachItem, ExecutionVariables, CacheConfig, step,
)

CODE = "examples/packaging/code"


def default_warehouse() -> str:
    """$PACKAGING_WAREHOUSE or .forgeline/packaging/warehouse.duckdb, as an absolute URL (jobs run in their own folders)."""
    location = os.environ.get("PACKAGING_WAREHOUSE", ".forgeline/packaging/warehouse.duckdb")
    return location if "://" in location else "duckdb:///" + os.path.abspath(location)


package_types = ParameterString("PackageTypes", default_value="mailer,bag,box,none")  # or a JSON list
warehouse = ParameterString("Warehouse", default_value=default_warehouse())
weeks = ParameterInteger("TrainingWeeks", default_value=1)            # the latest weeks of feedback to learn from
split_ratio = ParameterFloat("SplitRatio", default_value=0.8)
seed = ParameterInteger("Seed", default_value=7)
feature_set = ParameterString("FeatureSet", default_value="full")     # "full" or "dimensions"
model_type = ParameterString("ModelType", default_value="gradient_boosting")  # or random_forest, logistic_regression
model_params = ParameterString("ModelParams", default_value="{}")     # the estimator's parameters, a JSON object
max_score_drop = ParameterFloat("MaxScoreDrop", default_value=0.05)   # ROC AUC the new model may lose
max_label_shift = ParameterFloat("MaxLabelShift", default_value=0.05)  # change of the share shipped fine
max_size_change = ParameterFloat("MaxSizeChange", default_value=0.5)  # relative change of the training rows
notifications = ParameterString(  # an absolute path: @step functions, too, run in their own job folders
    "NotificationDir", default_value=os.path.abspath(".forgeline/packaging/notifications"))

# Everything computed from files is cached per package type: a week without new feedback for a type reuses its
# split, model and evaluation. Unloading reads the warehouse, which changes outside forgeline: never cached.
cache = CacheConfig(enable_caching=True, expire_after="P30D")
package_type = ForEachItem()
group = Join(on="-", values=["packaging", package_type])  # one model package group per type: packaging-mailer

unload = ProcessingStep(
    name="Unload", code="unload.py", source_dir=CODE,
    arguments=["--warehouse", warehouse, "--package-type", package_type, "--weeks", weeks],
    outputs=[ProcessingOutput(output_name="dataset", source="output/dataset")],
)
split = ProcessingStep(
    name="Split", code="split.py", source_dir=CODE,
    inputs=[ProcessingInput(source=unload.properties.outputs["dataset"], destination="input")],
    outputs=[ProcessingOutput(output_name="train", source="output/train"),
             ProcessingOutput(output_name="validation", source="output/validation"),
             ProcessingOutput(output_name="truth", source="output/truth")],
    arguments=["--ratio", split_ratio, "--seed", seed],
    cache_config=cache,
)
train = TrainingStep(
    name="Train", entry_point="train.py", source_dir=CODE,
    hyperparameters={"model_type": model_type, "model_params": model_params, "feature_set": feature_set,
                     "package_type": package_type, "seed": seed},
    inputs={"train": TrainingInput(split.properties.outputs["train"])},
    metric_definitions=[{"Name": "train_auc", "Regex": r"train_auc ([0-9.]+)"}],
    environment={"OMP_NUM_THREADS": "1"},
    max_run=600,
    cache_config=cache,
)
model = Model(model_data=train.properties.model_artifacts, entry_point="inference.py", source_dir=CODE)
validate = TransformStep(
    name="Validate", model=model,
    inputs=TransformInput(split.properties.outputs["validation"], content_type="text/csv"),
    join_source="Input",  # each output line is the input record followed by the prediction
    cache_config=cache,
)
evaluation = PropertyFile(name="Evaluation", output_name="evaluation", path="evaluation.json")
evaluate = ProcessingStep(
    name="Evaluate", code="evaluate.py", source_dir=CODE,
    inputs=[ProcessingInput(source=validate.properties.output_uri, destination="predictions"),
            ProcessingInput(source=split.properties.outputs["truth"], destination="truth")],
    outputs=[ProcessingOutput(output_name="evaluation", source="evaluation")],
    arguments=["--package-type", package_type],
    property_files=[evaluation],
    cache_config=cache,
)


@step(name="Compare")
def compare(group: str, package_type: str, score: float, ok_rate: float, training_rows: int,
            current_version: int | None, current_report: dict | None,
            max_score_drop: float, max_label_shift: float, max_size_change: float) -> dict:
    """Approve the candidate unless it loses score, or was trained on a different label mix or amount of data."""
    candidate = {"score": score, "ok_rate": ok_rate, "training_rows": training_rows}
    if current_version is None:
        return {"package_type": package_type, "group": group, "status": "Approved", "candidate": candidate,
                "current": None, "checks": {}, "deviation": {}, "reasons": [],
                "summary": f"approved: the first approved model of {group}"}
    report = current_report or {}
    before = {"version": current_version, "score": report["metrics"]["roc_auc"]["value"],
              "ok_rate": report["data"]["ok_rate"], "training_rows": report["data"]["training_rows"]}
    checks = {
        "score_change": round(score - before["score"], 4),
        "label_shift": round(ok_rate - before["ok_rate"], 4),
        "size_change": round((training_rows - before["training_rows"]) / max(before["training_rows"], 1), 4),
    }
    # How far each figure moved the bad way, never negative: what alarms compare with their own thresholds
    # (forgeline alarms create drift --on metric --when "steps.Compare.properties.deviation.score_drop > 0.05").
    deviation = {"score_drop": round(max(-checks["score_change"], 0.0), 4),
                 "label_shift": abs(checks["label_shift"]), "size_change": abs(checks["size_change"])}
    reasons = []
    if checks["score_change"] < -max_score_drop:
        reasons.append(f"ROC AUC fell by {-checks['score_change']:.3f} ({before['score']:.3f} -> {score:.3f}), "
                       f"more than {max_score_drop}")
    if abs(checks["label_shift"]) > max_label_shift:
        reasons.append(f"the share shipped fine moved by {checks['label_shift']:+.3f} "
                       f"({before['ok_rate']:.3f} -> {ok_rate:.3f}), more than {max_label_shift}")
    if abs(checks["size_change"]) > max_size_change:
        reasons.append(f"the training data changed by {checks['size_change']:+.0%} ({before['training_rows']} -> "
                       f"{training_rows} rows), more than {max_size_change:.0%}")
    status = "Rejected" if reasons else "Approved"
    summary = (f"rejected: {'; '.join(reasons)}; {group}/{before['version']} stays approved" if reasons
               else f"approved: replaces {group}/{before['version']} (ROC AUC {checks['score_change']:+.3f})")
    return {"package_type": package_type, "group": group, "status": status, "candidate": candidate,
            "current": before, "checks": checks, "deviation": deviation, "reasons": reasons, "summary": summary}


current = ModelPackage.latest_approved(group, default=None)
decision = compare(
    group, package_type,
    JsonGet(step=evaluate, property_file=evaluation, json_path="metrics.roc_auc.value"),
    JsonGet(step=evaluate, property_file=evaluation, json_path="data.ok_rate"),
    JsonGet(step=evaluate, property_file=evaluation, json_path="data.training_rows"),
    current.version, current.metrics,  # the approved model this week's candidate must beat (None: none yet)
    max_score_drop, max_label_shift, max_size_change,
)
register = RegisterModel(
    name="Register", model=model, model_package_group_name=group,
    approval_status=decision["status"],  # Approved, or Rejected (the approved model before it stays current)
    content_types=["text/csv"], response_types=["text/csv"],
    model_metrics=ModelMetrics(evaluation),
    description=decision["summary"],
)
per_type = ForEach(
    name="Package", items=package_types, steps=[unload, split, train, validate, evaluate, decision, register],
    outputs={"decision": decision, "model_package": register.properties.model_package_arn},
    max_concurrency=2,
)


@step(name="Notify")
def notify(decisions: list, packages: list, folder: str, execution_id: str) -> dict:
    """One structured log event per decision, and the run's decisions as a JSON file for whoever watches."""
    notification = {
        "event": "packaging.training.decisions", "execution_id": execution_id,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "decisions": [{**d, "model_package": p} for d, p in zip(decisions, packages)],
    }
    for decision in notification["decisions"]:
        print(json.dumps({"event": "packaging.model_decision", "execution_id": execution_id,
                          "package_type": decision["package_type"], "status": decision["status"],
                          "model_package": decision["model_package"], "reasons": decision["reasons"]}), flush=True)
    path = Path(folder) / f"training-{execution_id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notification, indent=2) + "\n")
    return {"file": str(path.resolve()), **notification}


pipeline = Pipeline(
    name="packaging-training",
    parameters=[package_types, warehouse, weeks, split_ratio, seed, feature_set, model_type, model_params,
                max_score_drop, max_label_shift, max_size_change, notifications],
    steps=[per_type, notify(per_type.properties.outputs["decision"], per_type.properties.outputs["model_package"],
                            notifications, ExecutionVariables.EXECUTION_ID)],
)
