"""What each kind of event says: a headline with the figures, the execution to look at, the event's fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from forgeline.alarms.messages import render_message
from forgeline.store.metadata.alarm_store import AlarmEventRecord, AlarmRecord

AT = datetime(2026, 12, 1, tzinfo=UTC)


def event(kind: str, **payload: Any) -> AlarmEventRecord:
    return AlarmEventRecord(id=3, kind=kind, subject=payload.get("execution_id"), payload=payload,
                            dispatched=True, created_at=AT)


@pytest.mark.parametrize(("kind", "payload", "text"), [
    ("execution.started", {"execution_id": "e1", "pipeline": "train"},
     "[forgeline] execution e1 of train started\nexecution e1: `forgeline executions describe e1`"),
    ("execution.failed", {"execution_id": "e1", "pipeline": "train", "failure_reason": "step Fit failed: OOM"},
     "[forgeline] execution e1 of train failed\nreason: step Fit failed: OOM\n"
     "execution e1: `forgeline executions describe e1`"),
    ("model.registered", {"package": "g/2", "status": "PendingManualApproval", "figures": []},
     "[forgeline] model g/2 registered as PendingManualApproval"),
    ("model.approved", {"package": "g/2", "actor": "alice", "note": "fine", "compared_with": None,
                        "figures": [{"name": "auc", "value": 0.91, "previous": None, "change": None}]},
     "[forgeline] model g/2 approved by alice\nnote: fine\nfigures (no approved model before it):\n  auc: 0.91"),
])
def test_headlines_and_details(kind: str, payload: dict[str, Any], text: str) -> None:
    message = render_message("team", None, event(kind, **payload))
    assert message.text == text and message.subject == text.splitlines()[0]
    assert message.body["text"] == text and message.body["event"] == kind and message.body["alarm"] == "team"


def test_a_metric_message_shows_the_values_its_condition_read() -> None:
    alarm = AlarmRecord(name="drift", events=["metric"], targets=["command:true"], paused=False, created_at=AT,
                        updated_at=AT, condition="steps.Compare.properties.shift > 0.05 or "
                                                 "steps.Compare.metrics.auc < 0.8")
    message = render_message("drift", alarm, event("metric", execution_id="e1", pipeline="train",
                                                   step="Loop-a-Compare", document={"Return": {"shift": 0.2}}))
    assert message.text.splitlines() == [
        "[forgeline] condition met on step Loop-a-Compare of train: steps.Compare.properties.shift > 0.05 or "
        "steps.Compare.metrics.auc < 0.8",
        "  steps.Compare.properties.shift = 0.2 (condition: > 0.05)",
        "  steps.Compare.metrics.auc = missing (condition: < 0.8)",
        "execution e1: `forgeline executions describe e1`"]
    assert "document" not in message.body  # the step's whole document stays in the store
