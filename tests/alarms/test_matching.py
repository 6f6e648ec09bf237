"""Which alarms an event rings: kinds, filters, pauses, an alarm's age, and metric conditions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from forgeline.alarms.matching import alarm_matches, deliveries_for, metric_conditions
from forgeline.store.metadata.alarm_store import AlarmEventRecord, AlarmRecord

CREATED = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def alarm(name: str = "a", events: tuple[str, ...] = ("execution.failed",), **fields: Any) -> AlarmRecord:
    values: dict[str, Any] = {"targets": ["command:true", "webhook:http://127.0.0.1:9/x"], "paused": False,
                              "created_at": CREATED, "updated_at": CREATED, **fields}
    return AlarmRecord(name=name, events=list(events), **values)


def event(kind: str = "execution.failed", minutes: int = 1, **payload: Any) -> AlarmEventRecord:
    at = CREATED + timedelta(minutes=minutes)
    return AlarmEventRecord(id=1, kind=kind, subject="exec-1", dispatched=False, created_at=at,
                            payload={"occurred_at": at.isoformat(), **payload})


def test_kind_pipeline_and_group_filters() -> None:
    assert alarm_matches(alarm(), event(pipeline="train"))
    assert not alarm_matches(alarm(), event("execution.succeeded"))
    assert alarm_matches(alarm(pipeline_name="train"), event(pipeline="train"))
    assert not alarm_matches(alarm(pipeline_name="train"), event(pipeline="score"))
    assert not alarm_matches(alarm(pipeline_name="train"), event())  # an event of no pipeline
    assert alarm_matches(alarm(pipeline_name="train"), event(pipeline_name="train"))  # as trigger events say it
    approvals = alarm(events=("model.approved",), group_name="packaging-bag")
    assert alarm_matches(approvals, event("model.approved", group="packaging-bag"))
    assert not alarm_matches(approvals, event("model.approved", group="packaging-box"))


def test_a_paused_alarm_and_one_newer_than_the_event_ring_nothing() -> None:
    assert not alarm_matches(alarm(paused=True), event())
    assert not alarm_matches(alarm(), event(minutes=-1))


def test_a_metric_alarm_rings_for_its_step_when_the_condition_holds() -> None:
    drift = alarm(events=("metric",), condition="steps.Compare.properties.deviation.score_drop > 0.05")
    beyond = {"Return": {"deviation": {"score_drop": 0.08}}}
    within = {"Return": {"deviation": {"score_drop": 0.01}}}
    assert alarm_matches(drift, event("metric", step="Package-mailer-Compare", document=beyond))
    assert not alarm_matches(drift, event("metric", step="Package-mailer-Compare", document=within))
    assert not alarm_matches(drift, event("metric", step="Package-mailer-Register", document=beyond))
    assert [c.step for c in metric_conditions([drift, alarm(), alarm(events=("metric",), condition="steps.X.metrics"
                                                                                                 ".a > 1",
                                                                      paused=True)])] == ["Compare"]


def test_every_target_of_every_rung_alarm_gets_a_delivery() -> None:
    rung = deliveries_for([alarm("a"), alarm("b", ("step.failed",)), alarm("c")], event())
    assert rung == [("a", "command:true"), ("a", "webhook:http://127.0.0.1:9/x"),
                    ("c", "command:true"), ("c", "webhook:http://127.0.0.1:9/x")]
