"""Where alarm events come from: step events (executions and steps) and model package events (the registry).

Each source row becomes zero or more outbox events carrying everything a message needs (pipeline, failure
reason, comparison figures), read when the row is converted, so a later message never depends on a later state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from forgeline.alarms.conditions import Condition
from forgeline.errors import NotFoundError
from forgeline.store.metadata.alarm_store import AlarmEventDraft, AlarmEventKind
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionStatus, ModelPackageRecord, StepStatus
from forgeline.workflow.models import ModelApprovalStatus

_EXECUTION_KINDS = {
    ExecutionStatus.EXECUTING.value: AlarmEventKind.EXECUTION_STARTED,
    ExecutionStatus.SUCCEEDED.value: AlarmEventKind.EXECUTION_SUCCEEDED,
    ExecutionStatus.FAILED.value: AlarmEventKind.EXECUTION_FAILED,
    ExecutionStatus.STOPPED.value: AlarmEventKind.EXECUTION_STOPPED,
}
_DECISIONS = {
    ModelApprovalStatus.APPROVED.value: AlarmEventKind.MODEL_APPROVED,
    ModelApprovalStatus.REJECTED.value: AlarmEventKind.MODEL_REJECTED,
}


def step_event_drafts(store: MetadataStore, rows: Sequence[Mapping[str, Any]],
                      conditions: Sequence[Condition]) -> list[AlarmEventDraft]:
    """Outbox events for step event rows: execution transitions, failed steps, and succeeded steps a condition reads."""
    pipelines: dict[str, str | None] = {}
    drafts = []
    for row in rows:
        execution_id = str(row["execution_id"])
        if execution_id not in pipelines:
            pipelines[execution_id] = _pipeline_of(store, execution_id)
        base = {"execution_id": execution_id, "pipeline": pipelines[execution_id],
                "occurred_at": _iso(row["created_at"])}
        payload = dict(row.get("payload") or {})
        if row["kind"] == "execution" and row["status"] in _EXECUTION_KINDS:
            drafts.append(AlarmEventDraft(_EXECUTION_KINDS[row["status"]].value, execution_id, {
                **base, "status": row["status"], "failure_reason": payload.get("failure_reason")}))
        elif row["kind"] == "step" and row["status"] == StepStatus.FAILED.value:
            drafts.append(AlarmEventDraft(AlarmEventKind.STEP_FAILED.value, execution_id, {
                **base, "step": row["step_name"], "failure_reason": payload.get("failure_reason")}))
        elif (row["kind"] == "step" and row["status"] == StepStatus.SUCCEEDED.value
              and any(condition.matches_step(row["step_name"]) for condition in conditions)):
            document = _step_document(store, execution_id, row["step_name"])
            if document is not None:
                drafts.append(AlarmEventDraft(AlarmEventKind.METRIC.value, execution_id, {
                    **base, "step": row["step_name"], "document": document}))
    return drafts


def model_event_drafts(store: MetadataStore, rows: Sequence[Mapping[str, Any]]) -> list[AlarmEventDraft]:
    """Outbox events for registry transitions: registered, and approved or rejected with the comparison figures."""
    drafts = []
    for row in rows:
        kinds = []
        if row["from_status"] is None:
            kinds.append(AlarmEventKind.MODEL_REGISTERED)
        if row["to_status"] in _DECISIONS:
            kinds.append(_DECISIONS[row["to_status"]])
        if not kinds:
            continue
        payload = _model_payload(store, row)
        for kind in kinds:
            drafts.append(AlarmEventDraft(kind.value, payload["package"], payload))
    return drafts


def _model_payload(store: MetadataStore, row: Mapping[str, Any]) -> dict[str, Any]:
    group, version = str(row["group_name"]), int(row["version"])
    payload: dict[str, Any] = {
        "group": group, "version": version, "package": f"{group}/{version}", "status": row["to_status"],
        "from_status": row["from_status"], "actor": row["actor"], "note": row["note"],
        "occurred_at": _iso(row["created_at"]),
    }
    try:
        package = store.get_model_package(group, version)
    except NotFoundError:  # deleted since: the transition alone is told
        return payload
    lineage = package.lineage or {}
    payload.update(description=package.description, pipeline=lineage.get("pipeline"),
                   execution_id=lineage.get("execution_id"))
    previous = _approved_before(store, package)
    payload["compared_with"] = None if previous is None else previous.arn
    payload["figures"] = comparison_figures(package.metrics, None if previous is None else previous.metrics)
    return payload


def _approved_before(store: MetadataStore, package: ModelPackageRecord) -> ModelPackageRecord | None:
    """The group's newest approved version other than this one: the model this one is judged against."""
    approved = store.list_model_packages(package.group, ModelApprovalStatus.APPROVED)
    others = [candidate for candidate in approved if candidate.version != package.version]
    return max(others, key=lambda candidate: candidate.version, default=None)


def comparison_figures(metrics: Any, previous: Any) -> list[dict[str, Any]]:
    """Every number of a metrics report, with the previous model's value and the change where it has one."""
    now, before = flatten_numbers(metrics), flatten_numbers(previous)
    figures = []
    for name, value in now.items():
        old = before.get(name)
        figures.append({"name": name, "value": value, "previous": old,
                        "change": None if old is None else round(value - old, 6)})
    return figures


def flatten_numbers(report: Any, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a nested report, by dotted path (``metrics.roc_auc.value`` → 0.97)."""
    found: dict[str, float] = {}
    if isinstance(report, Mapping):
        for key, value in report.items():
            found.update(flatten_numbers(value, f"{prefix}{key}."))
    elif isinstance(report, (int, float)) and not isinstance(report, bool):
        found[prefix.rstrip(".")] = float(report)
    return found


def _pipeline_of(store: MetadataStore, execution_id: str) -> str | None:
    try:
        return store.get_execution(execution_id).pipeline_name
    except NotFoundError:
        return None


def _step_document(store: MetadataStore, execution_id: str, step_name: str) -> dict[str, Any] | None:
    """What conditions read of a succeeded step: its outputs, metrics and properties."""
    try:
        run = store.get_step_run(execution_id, step_name)
    except NotFoundError:
        return None
    return {"outputs": dict(run.outputs), "metrics": dict(run.metrics), **run.properties}


def _iso(moment: datetime) -> str:
    return moment.isoformat()
