"""AlarmStoreContract: alarms, the event outbox, source cursors and deliveries every MetadataStore must keep.

MetadataStoreContract inherits it, so a backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forgeline.errors import AlarmError, AlarmNotFoundError
from forgeline.store.metadata.alarm_store import AlarmDraft, AlarmEventDraft, DeliveryStatus
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepEventDraft, StepEventKind

DRAFT = AlarmDraft(name="failures", events=["execution.failed", "step.failed"],
                   targets=["webhook:http://127.0.0.1:9/x", "email:ml@example.com"], pipeline_name="train")


class AlarmStoreContract:
    """Shared tests of the alarm part of a MetadataStore (the subclass provides ``store``)."""

    def test_an_alarm_is_kept_whole_and_a_taken_name_refused(self, store: MetadataStore) -> None:
        record = store.create_alarm(DRAFT)
        assert (record.name, record.events, record.targets, record.pipeline_name, record.paused) == (
            "failures", DRAFT.events, DRAFT.targets, "train", False)
        assert store.get_alarm("failures") == record and store.list_alarms() == [record]
        with pytest.raises(AlarmError, match="already exists"):
            store.create_alarm(AlarmDraft(name="failures", events=["metric"], targets=["command:true"]))
        assert store.get_alarm("failures") == record

    def test_pause_resume_and_delete(self, store: MetadataStore) -> None:
        store.create_alarm(DRAFT)
        assert store.set_alarm_paused("failures", True).paused
        assert not store.set_alarm_paused("failures", False).paused
        store.delete_alarm("failures")
        with pytest.raises(AlarmNotFoundError, match="no alarm 'failures'"):
            store.get_alarm("failures")
        with pytest.raises(AlarmNotFoundError):
            store.delete_alarm("failures")

    def test_an_event_becomes_one_delivery_per_target_once(self, store: MetadataStore) -> None:
        event = store.append_alarm_event(AlarmEventDraft("trigger.rejected", "exports", {
            "reason": "not JSON", "at": datetime(2026, 1, 1, tzinfo=UTC)}))
        assert event.payload == {"reason": "not JSON", "at": "2026-01-01 00:00:00+00:00"}
        assert [e.id for e in store.list_undispatched_alarm_events(10)] == [event.id]
        store.create_alarm(DRAFT)
        pairs = [("failures", "command:true"), ("failures", "email:a@example.com")]
        store.dispatch_alarm_event(event.id, pairs)
        store.dispatch_alarm_event(event.id, pairs)  # again (a round cut short): nothing doubles
        assert store.list_undispatched_alarm_events(10) == []
        due = store.due_alarm_deliveries(datetime.now(UTC) + timedelta(seconds=1), 10)
        assert sorted(d.target for d in due) == ["command:true", "email:a@example.com"]
        assert {(d.status, d.attempts, d.event_kind, d.event_subject) for d in due} == {
            (DeliveryStatus.PENDING, 0, "trigger.rejected", "exports")}

    def test_tries_are_counted_until_delivered_or_failed(self, store: MetadataStore) -> None:
        for name in ("a", "b"):
            store.create_alarm(AlarmDraft(name=name, events=["metric"], targets=["command:true"]))
        event = store.append_alarm_event(AlarmEventDraft("metric", "exec-1", {}))
        store.dispatch_alarm_event(event.id, [("a", "command:true"), ("b", "command:false")])
        first, second = sorted(store.due_alarm_deliveries(datetime.now(UTC) + timedelta(seconds=1), 10),
                               key=lambda d: d.alarm_name)
        later = datetime.now(UTC) + timedelta(hours=1)
        retry = store.record_delivery_attempt(first.id, error="refused", next_attempt_at=later)
        assert (retry.status, retry.attempts, retry.last_error) == (DeliveryStatus.PENDING, 1, "refused")
        assert [d.id for d in store.due_alarm_deliveries(datetime.now(UTC) + timedelta(seconds=1), 10)] == [
            second.id]
        done = store.record_delivery_attempt(first.id, error=None, next_attempt_at=None)
        assert (done.status, done.attempts, done.delivered_at is not None) == (DeliveryStatus.DELIVERED, 2, True)
        failed = store.record_delivery_attempt(second.id, error="exit 1", next_attempt_at=None)
        assert (failed.status, failed.attempts) == (DeliveryStatus.FAILED, 1)
        assert [d.id for d in store.list_alarm_deliveries(10)] == [second.id, first.id]
        assert [d.id for d in store.list_alarm_deliveries(10, "a")] == [first.id]

    def test_pausing_or_deleting_drops_pending_deliveries_and_a_paused_alarm_gets_none(
            self, store: MetadataStore) -> None:
        for name in ("paused", "deleted", "kept"):
            store.create_alarm(AlarmDraft(name=name, events=["step.failed"], targets=["command:true"]))
        first = store.append_alarm_event(AlarmEventDraft("step.failed", "exec-1", {}))
        store.dispatch_alarm_event(first.id, [("paused", "command:true"), ("deleted", "command:true"),
                                              ("kept", "command:true")])
        retried = next(d for d in store.list_alarm_deliveries() if d.alarm_name == "kept")
        store.record_delivery_attempt(retried.id, error=None, next_attempt_at=None)
        store.set_alarm_paused("paused", True)
        store.delete_alarm("deleted")
        store.set_alarm_paused("kept", True)  # a delivered one stays delivered
        assert {d.alarm_name: (d.status, d.last_error) for d in store.list_alarm_deliveries()} == {
            "paused": (DeliveryStatus.DROPPED, "not sent: alarm 'paused' was paused first"),
            "deleted": (DeliveryStatus.DROPPED, "not sent: alarm 'deleted' was deleted first"),
            "kept": (DeliveryStatus.DELIVERED, None)}
        assert store.get_alarm_delivery(retried.id).status == DeliveryStatus.DELIVERED
        second = store.append_alarm_event(AlarmEventDraft("step.failed", "exec-2", {}))
        store.dispatch_alarm_event(second.id, [("paused", "command:true"), ("deleted", "command:true")])
        assert store.list_undispatched_alarm_events(10) == []
        assert store.due_alarm_deliveries(datetime.now(UTC) + timedelta(days=1), 10) == []
        store.set_alarm_paused("paused", False)  # resumed: dropped ones stay dropped, new events ring
        third = store.append_alarm_event(AlarmEventDraft("step.failed", "exec-3", {}))
        store.dispatch_alarm_event(third.id, [("paused", "command:true")])
        assert [d.event_subject for d in store.due_alarm_deliveries(datetime.now(UTC) + timedelta(days=1), 10)
                ] == ["exec-3"]

    def test_history_outlives_a_deleted_alarm(self, store: MetadataStore) -> None:
        store.create_alarm(DRAFT)
        event = store.append_alarm_event(AlarmEventDraft("step.failed", "exec-1", {}))
        store.dispatch_alarm_event(event.id, [("failures", "command:true")])
        store.delete_alarm("failures")
        assert [d.alarm_name for d in store.list_alarm_deliveries()] == ["failures"]

    def test_source_rows_are_imported_once_with_the_cursor(self, store: MetadataStore) -> None:
        version = store.save_pipeline_version("train", {"version": "1", "steps": [], "parameters": []})
        store.create_execution(execution_id="exec-a", pipeline_name="train", pipeline_version=version.version,
                               parameters={}, work_dir="/tmp", steps=[("prepare", "processing")])
        store.append_events([StepEventDraft("exec-a", StepEventKind.EXECUTION, status="Failed"),
                             StepEventDraft("exec-a", StepEventKind.STEP, "prepare", status="Failed")])
        batch = store.read_source("step_events", 1, settle_seconds=0)
        assert len(batch.rows) == 1 and batch.rows[0]["status"] == "Failed"
        assert store.import_alarm_events(batch, [AlarmEventDraft("execution.failed", "exec-a", {})])
        assert not store.import_alarm_events(batch, [AlarmEventDraft("execution.failed", "exec-a", {})])
        rest = store.read_source("step_events", 10, settle_seconds=0)
        assert [row["step_name"] for row in rest.rows] == ["prepare"] and rest.after == batch.last
        assert store.import_alarm_events(rest, [])
        assert store.read_source("step_events", 10, settle_seconds=0).rows == []
        assert [e.kind for e in store.list_undispatched_alarm_events(10)] == ["execution.failed"]

    def test_rows_are_read_in_id_order_up_to_the_first_unsettled_one(self, store: MetadataStore) -> None:
        version = store.save_pipeline_version("train", {"version": "1", "steps": [], "parameters": []})
        store.create_execution(execution_id="exec-a", pipeline_name="train", pipeline_version=version.version,
                               parameters={}, work_dir="/tmp", steps=[])
        store.append_events([StepEventDraft("exec-a", StepEventKind.EXECUTION, status="Executing")])
        # SQLite commits one writer at a time: nothing to wait for. Elsewhere a just-written row waits.
        visible = store.read_source("step_events", 10, settle_seconds=3600).rows
        assert len(visible) == (1 if store.database_url.startswith("sqlite") else 0)
