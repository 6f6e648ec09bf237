"""StepEventsContract: the append-only event log that live views follow with a cursor.

MetadataStoreContract inherits it, so every backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forgeline.errors import ExecutionFinishedError, ExecutionNotFoundError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import (
    ExecutionStatus,
    StepEventDraft,
    StepEventKind,
    StepStatus,
)
from forgeline.store.metadata.updates import ExecutionUpdate


def _execution(store: MetadataStore, execution_id: str) -> str:
    version = store.save_pipeline_version("evented", {"steps": ["fit"]})
    store.create_execution(execution_id=execution_id, pipeline_name="evented", pipeline_version=version.version,
                           parameters={}, work_dir="/w", steps=[("fit", "training")])
    return execution_id


class StepEventsContract:
    """Shared tests of append_events and events; the class using it provides `store`."""

    def test_appended_events_come_back_in_order_with_growing_cursors(self, store: MetadataStore) -> None:
        execution_id = _execution(store, "exec-e1")
        before = datetime.now(UTC) - timedelta(seconds=1)
        appended = store.append_events([
            StepEventDraft(execution_id, StepEventKind.EXECUTION, status=ExecutionStatus.EXECUTING),
            StepEventDraft(execution_id, StepEventKind.STEP, step_name="fit", status=StepStatus.EXECUTING),
            StepEventDraft(execution_id, StepEventKind.ATTEMPT, step_name="fit", attempt=1, status="Executing",
                           payload={"job": "ref-1", "nested": [1, None, {"ü": 0.5}]}),
            StepEventDraft(execution_id, StepEventKind.LOG, step_name="fit", attempt=1,
                           payload={"path": "logs/exec-e1/fit/1.log"}),
        ])
        ids = [event.id for event in appended]
        assert ids == sorted(ids) and len(set(ids)) == 4
        assert store.events(execution_id) == appended
        third = appended[2]
        assert (third.kind, third.step_name, third.attempt, third.status) == (
            StepEventKind.ATTEMPT, "fit", 1, "Executing")
        assert third.payload == {"job": "ref-1", "nested": [1, None, {"ü": 0.5}]}
        assert appended[0].status == "Executing" and appended[0].step_name is None and appended[0].payload == {}
        assert all(event.created_at >= before and event.created_at.utcoffset() == timedelta(0)
                   for event in appended)

    def test_a_reader_resumes_after_its_cursor(self, store: MetadataStore) -> None:
        execution_id = _execution(store, "exec-e1")
        first = store.append_events([StepEventDraft(execution_id, StepEventKind.STEP, step_name="fit",
                                                    status="Starting")])
        seen = store.events(execution_id)
        assert seen == first
        assert store.events(execution_id, after=seen[-1].id) == []
        later = store.append_events([
            StepEventDraft(execution_id, StepEventKind.STEP, step_name="fit", status=status)
            for status in ("Executing", "Succeeded")
        ])
        assert store.events(execution_id, after=seen[-1].id) == later
        assert store.events(execution_id, after=seen[-1].id, limit=1) == later[:1]
        assert store.events(execution_id, after=later[0].id, limit=1) == later[1:]

    def test_each_execution_sees_only_its_own_events(self, store: MetadataStore) -> None:
        one, two = _execution(store, "exec-e1"), _execution(store, "exec-e2")
        for round_number in range(3):
            store.append_events([StepEventDraft(one, StepEventKind.METRIC, step_name="fit", attempt=1,
                                                payload={"round": round_number}),
                                 StepEventDraft(two, StepEventKind.METRIC, step_name="fit", attempt=1,
                                                payload={"round": round_number})])
        for execution_id in (one, two):
            events = store.events(execution_id)
            assert [event.payload["round"] for event in events] == [0, 1, 2]
            assert {event.execution_id for event in events} == {execution_id}

    def test_events_of_an_unknown_execution_are_refused(self, store: MetadataStore) -> None:
        execution_id = _execution(store, "exec-e1")
        with pytest.raises(ExecutionNotFoundError, match="missing"):
            store.append_events([StepEventDraft(execution_id, StepEventKind.STEP, step_name="fit"),
                                 StepEventDraft("missing", StepEventKind.STEP)])
        assert store.events(execution_id) == []  # the whole batch was refused
        with pytest.raises(ExecutionNotFoundError, match="missing"):
            store.events("missing")
        assert store.append_events([]) == []

    def test_an_execution_s_final_status_and_its_event_are_written_together(self, store: MetadataStore) -> None:
        execution_id = _execution(store, "exec-e1")
        event = StepEventDraft(execution_id, StepEventKind.EXECUTION, status="Succeeded")
        record = store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.SUCCEEDED,
                                                                      ended_at=datetime.now(UTC)), events=[event])
        assert record.status == ExecutionStatus.SUCCEEDED
        assert [(e.kind, e.status) for e in store.events(execution_id)] == [(StepEventKind.EXECUTION, "Succeeded")]
        with pytest.raises(ExecutionFinishedError):  # a refused update appends nothing either
            store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.FAILED),
                                   events=[StepEventDraft(execution_id, StepEventKind.EXECUTION, status="Failed")])
        assert len(store.events(execution_id)) == 1

    def test_deleting_an_execution_deletes_its_events(self, store: MetadataStore) -> None:
        execution_id = _execution(store, "exec-e1")
        store.append_events([StepEventDraft(execution_id, StepEventKind.EXECUTION, status="Executing")])
        store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.SUCCEEDED,
                                                             ended_at=datetime.now(UTC)))
        store.delete_execution(execution_id)
        with pytest.raises(ExecutionNotFoundError):
            store.events(execution_id)
        assert store.events(_execution(store, "exec-e1")) == []  # a new execution by that id starts empty
