"""Source rows become outbox events: execution transitions, failed steps, steps a condition reads, registry
decisions (also one made at registration)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeline.alarms.conditions import parse_condition
from forgeline.alarms.sources import comparison_figures, model_event_drafts, step_event_drafts
from forgeline.store.metadata.records import ModelPackageDraft, StepEventDraft, StepEventKind, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import StepRunUpdate
from forgeline.workflow.models import ModelApprovalStatus


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")
    yield opened
    opened.close()


def test_execution_and_step_transitions(store: SqlMetadataStore) -> None:
    version = store.save_pipeline_version("train", {"version": "1", "steps": [], "parameters": []})
    store.create_execution(execution_id="e1", pipeline_name="train", pipeline_version=version.version,
                           parameters={}, work_dir="/tmp", steps=[("Fit", "training"), ("Loop-a-Check", "function")])
    store.update_step_run("e1", "Loop-a-Check", StepRunUpdate(status=StepStatus.SUCCEEDED, metrics={"auc": 0.9},
                                                              properties={"Return": {"ok": True}}))
    store.append_events([
        StepEventDraft("e1", StepEventKind.EXECUTION, status="Executing"),
        StepEventDraft("e1", StepEventKind.ATTEMPT, "Fit", 1, status="Executing"),
        StepEventDraft("e1", StepEventKind.STEP, "Loop-a-Check", status="Succeeded"),
        StepEventDraft("e1", StepEventKind.STEP, "Fit", status="Failed", payload={"failure_reason": "OOM"}),
        StepEventDraft("e1", StepEventKind.EXECUTION, status="Stopped"),
        StepEventDraft("e1", StepEventKind.EXECUTION, status="Succeeded"),
    ])
    rows = store.read_source("step_events", 100).rows
    drafts = step_event_drafts(store, rows, [parse_condition("steps.Check.metrics.auc > 0.5")])
    assert [draft.kind for draft in drafts] == ["execution.started", "metric", "step.failed", "execution.stopped",
                                                "execution.succeeded"]
    assert {draft.subject for draft in drafts} == {"e1"} and {d.payload["pipeline"] for d in drafts} == {"train"}
    assert drafts[1].payload["document"] == {"outputs": {}, "metrics": {"auc": 0.9}, "Return": {"ok": True}}
    assert (drafts[2].payload["step"], drafts[2].payload["failure_reason"]) == ("Fit", "OOM")
    # Without a condition reading it, a succeeded step is no event at all.
    assert "metric" not in [draft.kind for draft in step_event_drafts(store, rows, [])]


def test_registry_transitions(store: SqlMetadataStore) -> None:
    for status in (ModelApprovalStatus.APPROVED, ModelApprovalStatus.PENDING_MANUAL_APPROVAL):
        store.create_model_package(ModelPackageDraft(group="g", approval_status=status, model_data="/m",
                                                     metrics={"auc": 0.8}, lineage={"pipeline": "train"}),
                                   actor="alice")
    store.update_model_package_status("g", 2, ModelApprovalStatus.REJECTED, actor="bob", note="worse")
    drafts = model_event_drafts(store, store.read_source("model_package_events", 100).rows)
    assert [(d.kind, d.subject) for d in drafts] == [("model.registered", "g/1"), ("model.approved", "g/1"),
                                                     ("model.registered", "g/2"), ("model.rejected", "g/2")]
    rejected = drafts[-1].payload
    assert (rejected["actor"], rejected["note"], rejected["pipeline"], rejected["compared_with"]) == (
        "bob", "worse", "train", "g/1")


def test_comparison_figures_take_every_number_of_the_report() -> None:
    now = {"metrics": {"auc": {"value": 0.8}, "name": "x"}, "data": {"rows": 10, "flag": True}}
    before = {"metrics": {"auc": {"value": 0.9}}}
    assert comparison_figures(now, before) == [
        {"name": "metrics.auc.value", "value": 0.8, "previous": 0.9, "change": -0.1},
        {"name": "data.rows", "value": 10.0, "previous": None, "change": None}]
