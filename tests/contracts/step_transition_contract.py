"""StepTransitionContract: record_step_transition writes a step's whole transition in one fenced transaction.

MetadataStoreContract inherits it, so every backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

import pytest

from forgeline.errors import StaleOwnerError, StepNotFoundError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepEventDraft, StepEventKind, StepStatus
from forgeline.store.metadata.updates import AttemptClose, AttemptOpen, StepRunUpdate

LEASE = 600.0  # seconds: a lease no test outlives


def _execution(store: MetadataStore, execution_id: str = "exec-t1") -> str:
    version = store.save_pipeline_version("moving", {"steps": ["fit"]})
    store.create_execution(execution_id=execution_id, pipeline_name="moving", pipeline_version=version.version,
                           parameters={}, work_dir="/w", steps=[("fit", "training")])
    return execution_id


def _start_events(execution_id: str, attempt: int) -> list[StepEventDraft]:
    return [
        StepEventDraft(execution_id, StepEventKind.ATTEMPT, "fit", attempt, StepStatus.EXECUTING.value),
        StepEventDraft(execution_id, StepEventKind.LOG, "fit", attempt, payload={"path": f"fit/{attempt}.log"}),
        StepEventDraft(execution_id, StepEventKind.STEP, "fit", None, StepStatus.EXECUTING.value),
    ]


class StepTransitionContract:
    """Shared tests of record_step_transition; the class using it provides `store`."""

    def test_starting_an_attempt_updates_the_step_and_appends_its_events_in_order(
            self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        epoch = store.claim_execution(execution_id, "me", LEASE)
        assert epoch is not None
        store.record_step_transition(execution_id, "fit", update=StepRunUpdate(status=StepStatus.EXECUTING),
                                     started=AttemptOpen(1, "fit/1.log"), events=_start_events(execution_id, 1),
                                     epoch=epoch)
        run = store.get_step_run(execution_id, "fit")
        assert (run.status, run.attempts) == (StepStatus.EXECUTING, 1)
        [attempt] = store.list_attempts(execution_id, "fit")
        assert (attempt.attempt, attempt.status, attempt.log_path) == (1, StepStatus.EXECUTING, "fit/1.log")
        events = store.events(execution_id)
        assert [(e.kind, e.attempt, e.status, e.payload) for e in events] == [
            (StepEventKind.ATTEMPT, 1, "Executing", {}), (StepEventKind.LOG, 1, None, {"path": "fit/1.log"}),
            (StepEventKind.STEP, None, "Executing", {})]
        assert [e.id for e in events] == sorted({e.id for e in events})

    def test_ending_an_attempt_and_starting_the_next_counts_both(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        store.record_step_transition(execution_id, "fit", started=AttemptOpen(1, "fit/1.log"))
        store.record_step_transition(
            execution_id, "fit", ended=AttemptClose(1, StepStatus.INTERRUPTED, "Interrupted", "spot reclaimed"),
            started=AttemptOpen(2, "fit/2.log"), events=[StepEventDraft(
                execution_id, StepEventKind.ATTEMPT, "fit", 1, StepStatus.INTERRUPTED.value)])
        first, second = store.list_attempts(execution_id, "fit")
        assert (first.status, first.failure_kind, first.failure_reason) == (
            StepStatus.INTERRUPTED, "Interrupted", "spot reclaimed")
        assert first.ended_at is not None and (second.attempt, second.status) == (2, StepStatus.EXECUTING)
        assert store.get_step_run(execution_id, "fit").attempts == 2
        assert [(e.attempt, e.status) for e in store.events(execution_id)] == [(1, "Interrupted")]

    def test_a_success_ends_the_attempt_and_stores_the_result(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        store.record_step_transition(execution_id, "fit", started=AttemptOpen(1, None))
        store.record_step_transition(
            execution_id, "fit", ended=AttemptClose(1, StepStatus.SUCCEEDED),
            update=StepRunUpdate(status=StepStatus.SUCCEEDED, outputs={"model": "s3://m"}, metrics={"acc": 0.5}),
            events=[StepEventDraft(execution_id, StepEventKind.STEP, "fit", None, StepStatus.SUCCEEDED.value)])
        run = store.get_step_run(execution_id, "fit")
        assert (run.status, run.outputs, run.metrics, run.attempts) == (
            StepStatus.SUCCEEDED, {"model": "s3://m"}, {"acc": 0.5}, 1)
        assert store.list_attempts(execution_id, "fit")[0].status == StepStatus.SUCCEEDED

    def test_a_stale_epoch_writes_nothing(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        stale = store.claim_execution(execution_id, "first", 0.0)
        assert stale is not None and store.claim_execution(execution_id, "second", LEASE) == stale + 1
        with pytest.raises(StaleOwnerError):
            store.record_step_transition(execution_id, "fit", update=StepRunUpdate(status=StepStatus.EXECUTING),
                                         started=AttemptOpen(1, "fit/1.log"),
                                         events=_start_events(execution_id, 1), epoch=stale)
        run = store.get_step_run(execution_id, "fit")
        assert (run.status, run.attempts) == (StepStatus.PENDING, 0)
        assert store.list_attempts(execution_id, "fit") == [] and store.events(execution_id) == []

    def test_an_unknown_attempt_to_end_writes_nothing(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        with pytest.raises(StepNotFoundError, match="no attempt 3"):
            store.record_step_transition(execution_id, "fit", ended=AttemptClose(3, StepStatus.FAILED),
                                         update=StepRunUpdate(status=StepStatus.FAILED),
                                         events=_start_events(execution_id, 3))
        assert store.get_step_run(execution_id, "fit").status == StepStatus.PENDING
        assert store.events(execution_id) == []

    def test_an_unknown_step_is_refused(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        with pytest.raises(StepNotFoundError, match="no step 'nope'"):
            store.record_step_transition(execution_id, "nope", update=StepRunUpdate(status=StepStatus.FAILED))
