"""The dispatcher over a real SQLite store: step and registry events in, deliveries to real receivers out.

The events are written through the store's own API, exactly as orchestrators and the registry write them; the
whole server's journey (a real pipeline, a killed server) is in tests/api/test_alarms.py and tests/e2e.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from alarms.receivers import smtp_sink, wait_for, webhook_receiver
from forgeline.alarms.definitions import define_alarm
from forgeline.alarms.dispatcher import AlarmDispatcher
from forgeline.alarms.settings import AlarmSettings
from forgeline.store.metadata.alarm_store import AlarmDelivery, AlarmEventDraft, DeliveryStatus
from forgeline.store.metadata.records import (
    ModelPackageDraft,
    StepEventDraft,
    StepEventKind,
    StepStatus,
)
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import StepRunUpdate
from forgeline.workflow.models import ModelApprovalStatus

FAST = AlarmSettings(retry_seconds=0.01, max_retry_seconds=0.02, max_attempts=3, poll_seconds=0.05)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlMetadataStore]:
    opened = SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")
    yield opened
    opened.close()


def alarm(store: SqlMetadataStore, name: str, events: list[str], targets: list[str], **options: Any) -> None:
    store.create_alarm(define_alarm(name, events, targets, **options))


def execution(store: SqlMetadataStore, execution_id: str, pipeline: str = "packaging-training",
              steps: tuple[str, ...] = ("Package-mailer-Train", "Package-mailer-Compare")) -> None:
    version = store.save_pipeline_version(pipeline, {"version": "1", "steps": [], "parameters": []})
    store.create_execution(execution_id=execution_id, pipeline_name=pipeline, pipeline_version=version.version,
                           parameters={}, work_dir="/tmp", steps=[(step, "function") for step in steps])
    store.append_events([StepEventDraft(execution_id, StepEventKind.EXECUTION, status="Executing")])


def fail(store: SqlMetadataStore, execution_id: str, step: str, reason: str) -> None:
    store.update_step_run(execution_id, step, StepRunUpdate(status=StepStatus.FAILED, failure_reason=reason))
    store.append_events([
        StepEventDraft(execution_id, StepEventKind.STEP, step, status="Failed", payload={"failure_reason": reason}),
        StepEventDraft(execution_id, StepEventKind.EXECUTION, status="Failed",
                       payload={"failure_reason": f"step {step} failed"})])


def succeed(store: SqlMetadataStore, execution_id: str, step: str, returned: dict[str, Any]) -> None:
    store.update_step_run(execution_id, step, StepRunUpdate(status=StepStatus.SUCCEEDED,
                                                            properties={"Return": returned}))
    store.append_events([StepEventDraft(execution_id, StepEventKind.STEP, step, status="Succeeded")])


def register(store: SqlMetadataStore, status: ModelApprovalStatus, score: float, ok_rate: float, rows: int,
             description: str) -> None:
    report = {"metrics": {"roc_auc": {"value": score}}, "data": {"ok_rate": ok_rate, "training_rows": rows}}
    store.create_model_package(ModelPackageDraft(
        group="packaging-mailer", approval_status=status, model_data="/tmp/model.tar.gz", metrics=report,
        description=description, lineage={"execution_id": "exec-1", "pipeline": "packaging-training"}),
        actor="execution exec-1")


def test_failures_are_delivered_once_even_by_a_restarted_dispatcher(store: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        alarm(store, "failures", ["execution.failed", "step.failed"], [f"webhook:{receiver.url}"])
        execution(store, "exec-1")
        fail(store, "exec-1", "Package-mailer-Train", "JobFailed: exit code 1: ValueError: bad ModelParams")
        AlarmDispatcher(store, FAST).run_once()
        AlarmDispatcher(store, FAST, owner="another process").run_once()  # after the lease: nothing new
    events = [body["event"] for body in receiver.bodies]
    assert events == ["step.failed", "execution.failed"]
    step_body = receiver.bodies[0]
    assert step_body["step"] == "Package-mailer-Train" and step_body["pipeline"] == "packaging-training"
    assert "reason: JobFailed: exit code 1: ValueError: bad ModelParams" in step_body["text"]
    assert "`forgeline executions describe exec-1`" in step_body["text"]
    history = store.list_alarm_deliveries()
    assert [(d.event_kind, d.status, d.attempts) for d in history] == [
        ("execution.failed", DeliveryStatus.DELIVERED, 1), ("step.failed", DeliveryStatus.DELIVERED, 1)]


def test_a_failing_webhook_is_retried_with_backoff_then_given_up(store: SqlMetadataStore) -> None:
    with webhook_receiver(failures=2) as flaky, webhook_receiver(failures=100) as down:
        alarm(store, "flaky", ["execution.failed"], [f"webhook:{flaky.url}"])
        alarm(store, "down", ["execution.failed"], [f"webhook:{down.url}"])
        execution(store, "exec-1")
        fail(store, "exec-1", "Package-mailer-Train", "boom")
        dispatcher = AlarmDispatcher(store, FAST)
        for _ in range(200):
            dispatcher.run_once()
            if all(d.status != DeliveryStatus.PENDING for d in store.list_alarm_deliveries()):
                break
            (pending,) = [d for d in store.list_alarm_deliveries() if d.status == DeliveryStatus.PENDING][:1] or [None]
            assert pending is None or pending.next_attempt_at is not None
    by_alarm = {d.alarm_name: d for d in store.list_alarm_deliveries()}
    assert (by_alarm["flaky"].status, by_alarm["flaky"].attempts) == (DeliveryStatus.DELIVERED, 3)
    assert len(flaky.bodies) == 1 and flaky.refused == 2
    assert (by_alarm["down"].status, by_alarm["down"].attempts) == (DeliveryStatus.FAILED, 3)
    assert "answered 500: busy, try later" in (by_alarm["down"].last_error or "")


def test_a_metric_condition_rings_when_its_step_succeeds_beyond_the_threshold(store: SqlMetadataStore,
                                                                             tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    script = tmp_path / "append.py"
    script.write_text("import sys\nwith open(sys.argv[1], 'a') as f: f.write(sys.stdin.read() + '\\n')\n")
    alarm(store, "drift", ["metric"], [f"command:{sys.executable} {script} {out}"], pipeline="packaging-training",
          when="steps.Compare.properties.deviation.score_drop > 0.05")
    execution(store, "exec-1")
    execution(store, "exec-2")
    execution(store, "exec-3", pipeline="other")
    succeed(store, "exec-1", "Package-mailer-Compare", {"deviation": {"score_drop": 0.08}, "status": "Rejected"})
    succeed(store, "exec-2", "Package-mailer-Compare", {"deviation": {"score_drop": 0.01}, "status": "Approved"})
    succeed(store, "exec-3", "Package-mailer-Compare", {"deviation": {"score_drop": 0.5}})
    AlarmDispatcher(store, FAST).run_once()
    (event,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert (event["event"], event["execution_id"], event["step"]) == ("metric", "exec-1", "Package-mailer-Compare")
    assert "steps.Compare.properties.deviation.score_drop = 0.08 (condition: > 0.05)" in event["text"]


def test_approvals_and_rejections_carry_the_comparison_figures(store: SqlMetadataStore) -> None:
    with smtp_sink() as sink:
        settings = AlarmSettings(smtp_url=f"smtp://127.0.0.1:{sink.port}", smtp_from="forgeline@example.com")
        alarm(store, "approvals", ["model.approved", "model.rejected"], ["email:ml-team@example.com"],
              group="packaging-mailer")
        register(store, ModelApprovalStatus.APPROVED, 0.971, 0.207, 800, "approved: the first approved model")
        register(store, ModelApprovalStatus.REJECTED, 0.891, 0.102, 800,
                 "rejected: ROC AUC fell by 0.080 (0.971 -> 0.891), more than 0.05")
        store.update_model_package_status("packaging-mailer", 2, ModelApprovalStatus.APPROVED, actor="alice",
                                          note="the carrier is fixed")
        AlarmDispatcher(store, settings).run_once()
    subjects = [message["Subject"] for _, message in sink.messages]
    assert subjects == ["[forgeline] model packaging-mailer/1 approved by execution exec-1",
                        "[forgeline] model packaging-mailer/2 rejected by execution exec-1",
                        "[forgeline] model packaging-mailer/2 approved by alice"]
    rejected = sink.messages[1][1].get_content()
    assert "description: rejected: ROC AUC fell by 0.080 (0.971 -> 0.891), more than 0.05" in rejected
    assert "figures (against packaging-mailer/1):" in rejected
    assert "metrics.roc_auc.value: 0.971 -> 0.891 (-0.08)" in rejected
    assert "data.ok_rate: 0.207 -> 0.102 (-0.105)" in rejected
    assert "data.training_rows: 800 -> 800 (+0)" in rejected
    assert "note: the carrier is fixed" in sink.messages[2][1].get_content()


def test_filters_pauses_and_alarms_newer_than_the_event(store: SqlMetadataStore, tmp_path: Path) -> None:
    execution(store, "exec-old")
    fail(store, "exec-old", "Package-mailer-Train", "before any alarm")
    with webhook_receiver() as receiver:
        target = [f"webhook:{receiver.url}"]
        alarm(store, "mine", ["execution.failed"], target, pipeline="packaging-training")
        alarm(store, "theirs", ["execution.failed"], target, pipeline="payments")
        alarm(store, "paused", ["execution.failed"], target)
        store.set_alarm_paused("paused", True)
        alarm(store, "bags", ["model.rejected"], target, group="packaging-bag")
        alarm(store, "rejections", ["trigger.rejected"], target, pipeline="packaging-training")
        execution(store, "exec-new")
        fail(store, "exec-new", "Package-mailer-Train", "boom")
        register(store, ModelApprovalStatus.REJECTED, 0.5, 0.5, 10, "rejected")
        store.append_alarm_event(AlarmEventDraft("trigger.rejected", "exports", {
            "trigger": "exports", "uri": "/drop/bad.json", "reason": "not valid JSON or YAML: line 1",
            "pipeline_name": "packaging-training"}))
        AlarmDispatcher(store, FAST).run_once()
    rung = sorted((d.alarm_name, d.event_subject) for d in store.list_alarm_deliveries())
    assert rung == [("mine", "exec-new"), ("rejections", "exports")]
    trigger_text = next(body["text"] for body in receiver.bodies if body["event"] == "trigger.rejected")
    assert trigger_text == "[forgeline] trigger exports rejected /drop/bad.json\nreason: not valid JSON or YAML: line 1"


def test_two_dispatchers_on_one_store_deliver_each_event_once(store: SqlMetadataStore) -> None:
    with webhook_receiver() as receiver:
        alarm(store, "failures", ["execution.failed"], [f"webhook:{receiver.url}"])
        stop = threading.Event()
        threads = [threading.Thread(target=AlarmDispatcher(store, FAST, owner=owner).run, args=(stop,))
                   for owner in ("server-1", "server-2")]
        for thread in threads:
            thread.start()
        try:
            for number in range(5):
                execution(store, f"exec-{number}")
                fail(store, f"exec-{number}", "Package-mailer-Train", "boom")
            wait_for("five deliveries", lambda: sum(d.status == DeliveryStatus.DELIVERED
                                                    for d in store.list_alarm_deliveries()) == 5)
            # One more after them: delivered in order, so any repeat of the five would have arrived first.
            execution(store, "exec-last")
            fail(store, "exec-last", "Package-mailer-Train", "boom")
            wait_for("the last delivery", lambda: len(receiver.bodies) >= 6)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
    assert sorted(body["execution_id"] for body in receiver.bodies) == sorted(
        [f"exec-{number}" for number in range(5)] + ["exec-last"])


def test_a_paused_alarm_drops_its_pending_deliveries_with_the_reason_and_a_resumed_one_sends_new_events(
        store: SqlMetadataStore) -> None:
    with webhook_receiver(failures=10**6) as receiver:
        alarm(store, "failures", ["execution.failed"], [f"webhook:{receiver.url}"])
        execution(store, "exec-1")
        fail(store, "exec-1", "Package-mailer-Train", "boom")
        dispatcher = AlarmDispatcher(store, FAST)
        dispatcher.run_once()
        assert receiver.refused == 1 and store.list_alarm_deliveries()[0].status == DeliveryStatus.PENDING
        store.set_alarm_paused("failures", True)
        receiver.failures = 0  # the receiver is back: a pending delivery would go out now
        (dropped,) = store.list_alarm_deliveries()
        assert (dropped.status, dropped.next_attempt_at) == (DeliveryStatus.DROPPED, None)
        assert dropped.last_error == "not sent: alarm 'failures' was paused first"
        assert store.due_alarm_deliveries(datetime.now(UTC) + timedelta(days=365), 10) == []
        execution(store, "exec-2")
        fail(store, "exec-2", "Package-mailer-Train", "while paused")  # a paused alarm rings for nothing
        dispatcher.run_once()
        store.set_alarm_paused("failures", False)
        execution(store, "exec-3")
        fail(store, "exec-3", "Package-mailer-Train", "after the resume")
        dispatcher.run_once()
    assert [body["execution_id"] for body in receiver.bodies] == ["exec-3"]
    assert [(d.event_subject, d.status) for d in store.list_alarm_deliveries()] == [
        ("exec-3", DeliveryStatus.DELIVERED), ("exec-1", DeliveryStatus.DROPPED)]


class PausedMidRound(SqlMetadataStore):
    """A store whose alarm ``failures`` is paused (or deleted) right after the dispatcher read what is due."""

    deleting = False

    def due_alarm_deliveries(self, now: datetime, limit: int) -> list[AlarmDelivery]:
        due = super().due_alarm_deliveries(now, limit)
        if due:
            self.delete_alarm("failures") if self.deleting else self.set_alarm_paused("failures", True)
        return due


@pytest.mark.parametrize("deleting", [False, True], ids=["paused", "deleted"])
def test_an_alarm_paused_or_deleted_after_the_due_list_was_read_sends_nothing(tmp_path: Path,
                                                                              deleting: bool) -> None:
    store = PausedMidRound(f"sqlite:///{tmp_path / 'forgeline.db'}")
    store.deleting = deleting
    try:
        with webhook_receiver() as receiver:
            alarm(store, "failures", ["execution.failed"], [f"webhook:{receiver.url}"])
            execution(store, "exec-1")
            fail(store, "exec-1", "Package-mailer-Train", "boom")
            alarms = store.list_alarms()
            AlarmDispatcher(store, FAST).run_once()
            # matched with a list read before the pause or deletion: the store creates nothing for it
            execution(store, "exec-2")
            fail(store, "exec-2", "Package-mailer-Train", "boom")
            dispatcher = AlarmDispatcher(store, FAST)
            dispatcher.import_events(alarms)
            assert dispatcher.dispatch_events(alarms) >= 1  # exec-2 failed: dispatched, to no delivery
        assert receiver.bodies == []
        (dropped,) = store.list_alarm_deliveries()
        assert (dropped.event_subject, dropped.status) == ("exec-1", DeliveryStatus.DROPPED)
        assert dropped.last_error == f"not sent: alarm 'failures' was {'deleted' if deleting else 'paused'} first"
    finally:
        store.close()
