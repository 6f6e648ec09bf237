"""ExecutionOwnershipContract: queued executions, leases, fencing epochs and final statuses.

MetadataStoreContract inherits it, so every backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from forgeline.errors import ExecutionFinishedError, ExecutionNotFoundError, StaleOwnerError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import (
    CacheEntry,
    ExecutionStatus,
    MetricPoint,
    ModelPackageDraft,
    StepEventDraft,
    StepEventKind,
    StepStatus,
)
from forgeline.store.metadata.updates import ExecutionUpdate, StepRunUpdate
from forgeline.workflow.models import ModelApprovalStatus

LEASE = 600.0  # seconds: a lease no test outlives
EXPIRED = 0.0  # a lease that has run out by the next call


def _execution(store: MetadataStore, execution_id: str = "exec-0001",
               status: ExecutionStatus = ExecutionStatus.EXECUTING) -> str:
    version = store.save_pipeline_version("owned", {"steps": ["a", "b"]})
    store.create_execution(execution_id=execution_id, pipeline_name="owned", pipeline_version=version.version,
                           parameters={}, work_dir="/w", steps=[("a", "processing"), ("b", "training")],
                           status=status)
    return execution_id


def _fenced_writes(store: MetadataStore, execution_id: str) -> dict[str, Callable[[int], Any]]:
    """Every write an orchestrator makes, as a function of the epoch it carries."""
    now = datetime.now(UTC)
    return {
        "update_execution": lambda epoch: store.update_execution(
            execution_id, ExecutionUpdate(failure_reason="written"), epoch=epoch),
        "update_step_run": lambda epoch: store.update_step_run(
            execution_id, "a", StepRunUpdate(status=StepStatus.EXECUTING), epoch=epoch),
        "add_step_runs": lambda epoch: store.add_step_runs(execution_id, [("c", "processing")], epoch=epoch),
        "start_attempt": lambda epoch: store.start_attempt(execution_id, "b", log_path=None, epoch=epoch),
        "append_events": lambda epoch: store.append_events(
            [StepEventDraft(execution_id, StepEventKind.STEP, step_name="a", status="Executing")], epoch=epoch),
        "put_cache_entry": lambda epoch: store.put_cache_entry(
            CacheEntry("k" * 64, "owned", "a", "processing", execution_id, {}, {}, {}, now), epoch=epoch),
        "add_metric_points": lambda epoch: store.add_metric_points(
            [MetricPoint(execution_id, "a", 1, "loss", 0.5, now, 0)], epoch=epoch),
    }


def _snapshot(store: MetadataStore, execution_id: str) -> tuple[Any, ...]:
    return (store.get_execution(execution_id).failure_reason, store.list_step_runs(execution_id),
            store.list_attempts(execution_id), store.events(execution_id), store.list_cache_entries_of(execution_id),
            store.list_metric_points(execution_id))


class ExecutionOwnershipContract:
    """Shared tests of claims, leases, epochs and final statuses; the class using it provides `store`."""

    def test_a_new_execution_is_unowned_at_epoch_zero(self, store: MetadataStore) -> None:
        record = store.get_execution(_execution(store))
        assert (record.owner, record.epoch, record.lease_expires_at, record.code_snapshot) == (None, 0, None, None)

    def test_a_queued_execution_has_not_started_and_only_new_executions_may_be_queued(
            self, store: MetadataStore) -> None:
        queued = store.get_execution(_execution(store, "exec-q", ExecutionStatus.QUEUED))
        assert queued.status is ExecutionStatus.QUEUED and queued.started_at is None
        assert not ExecutionStatus.QUEUED.is_terminal
        with pytest.raises(ValueError, match="Executing or Queued"):
            _execution(store, "exec-s", ExecutionStatus.SUCCEEDED)

    def test_a_claim_gives_the_lease_and_the_next_epoch_to_one_owner(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        before = datetime.now(UTC)
        assert store.claim_execution(execution_id, "orchestrator-1", LEASE) == 1
        record = store.get_execution(execution_id)
        assert (record.owner, record.epoch) == ("orchestrator-1", 1)
        assert record.lease_expires_at is not None and record.lease_expires_at >= before + timedelta(seconds=LEASE)
        assert record.heartbeat_at is not None and record.heartbeat_at >= before
        assert store.claim_execution(execution_id, "orchestrator-2", LEASE) is None  # the lease is live
        assert store.get_execution(execution_id).owner == "orchestrator-1"
        assert store.claim_execution(execution_id, "orchestrator-1", LEASE) == 2  # its holder may claim again

    def test_an_expired_lease_can_be_claimed_by_another_owner(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        assert store.claim_execution(execution_id, "paused", EXPIRED) == 1
        assert store.claim_execution(execution_id, "successor", LEASE) == 2
        assert store.get_execution(execution_id).owner == "successor"

    def test_claiming_a_queued_execution_starts_it(self, store: MetadataStore) -> None:
        execution_id = _execution(store, "exec-q", ExecutionStatus.QUEUED)
        assert store.claim_execution(execution_id, "launcher", LEASE) == 1
        record = store.get_execution(execution_id)
        assert record.status is ExecutionStatus.EXECUTING and record.started_at is not None

    def test_missing_and_finished_executions_cannot_be_claimed_or_renewed(self, store: MetadataStore) -> None:
        assert store.claim_execution("missing", "o", LEASE) is None
        assert not store.renew_lease("missing", 1, LEASE)
        execution_id = _execution(store)
        epoch = store.claim_execution(execution_id, "o", LEASE)
        assert epoch is not None
        store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.SUCCEEDED), epoch=epoch)
        assert store.claim_execution(execution_id, "o", LEASE) is None
        assert not store.renew_lease(execution_id, epoch, LEASE)

    def test_renewing_extends_the_lease_of_the_current_epoch_only(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        first = store.claim_execution(execution_id, "paused", EXPIRED)
        assert first is not None
        assert store.renew_lease(execution_id, first, LEASE)  # nobody took it meanwhile: still its own
        assert store.claim_execution(execution_id, "other", LEASE) is None
        renewed = store.get_execution(execution_id)
        assert renewed.lease_expires_at is not None and renewed.lease_expires_at > datetime.now(UTC)
        store.claim_execution(execution_id, "paused", EXPIRED)  # epoch 2, expired at once
        second = store.claim_execution(execution_id, "successor", LEASE)
        assert second == 3
        assert not store.renew_lease(execution_id, first, LEASE)
        assert store.get_execution(execution_id).owner == "successor"

    def test_writes_with_a_stale_epoch_are_refused_and_change_nothing(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        store.start_attempt(execution_id, "a", log_path=None)
        stale = store.claim_execution(execution_id, "paused", EXPIRED)
        current = store.claim_execution(execution_id, "successor", LEASE)
        assert stale is not None and current is not None
        before = _snapshot(store, execution_id)
        refused = {
            **_fenced_writes(store, execution_id),
            "finish_attempt": lambda epoch: store.finish_attempt(
                execution_id, "a", 1, status=StepStatus.INTERRUPTED, epoch=epoch),
        }
        for name, write in refused.items():
            with pytest.raises(StaleOwnerError, match=f"{execution_id}.*successor"):
                write(stale)
            assert _snapshot(store, execution_id) == before, name
        for write in refused.values():
            write(current)
        assert store.get_execution(execution_id).failure_reason == "written"
        assert store.list_attempts(execution_id, "a")[0].status is StepStatus.INTERRUPTED

    def test_a_registration_with_a_stale_epoch_registers_nothing(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        stale = store.claim_execution(execution_id, "paused", EXPIRED)
        current = store.claim_execution(execution_id, "successor", LEASE)
        assert stale is not None and current is not None
        draft = ModelPackageDraft(group="fenced", approval_status=ModelApprovalStatus.APPROVED,
                                  model_data="/m", lineage={"execution_id": execution_id, "step": "Register"})
        with pytest.raises(StaleOwnerError):
            store.create_model_package(draft, actor="pipeline", epoch=stale)
        assert store.list_model_package_groups() == []
        assert store.create_model_package(draft, actor="pipeline", epoch=current).version == 1
        with pytest.raises(ValueError, match="lineage\\['execution_id'\\]"):
            store.create_model_package(ModelPackageDraft(group="fenced", approval_status=ModelApprovalStatus.APPROVED,
                                                         model_data="/m"), actor="pipeline", epoch=current)

    def test_writes_without_an_epoch_are_not_fenced(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        store.claim_execution(execution_id, "owner", LEASE)
        for write in _fenced_writes(store, execution_id).values():
            write(None)
        assert store.get_execution(execution_id).failure_reason == "written"

    def test_an_epoch_for_a_missing_execution_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(ExecutionNotFoundError):
            store.update_execution("missing", ExecutionUpdate(failure_reason="x"), epoch=1)

    def test_a_finished_status_is_final(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        failed = store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.FAILED,
                                                                      failure_reason="boom"))
        for status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.EXECUTING, ExecutionStatus.STOPPING):
            with pytest.raises(ExecutionFinishedError, match=f"{execution_id} already ended \\(Failed\\)"):
                store.update_execution(execution_id, ExecutionUpdate(status=status, failure_reason=None))
        assert store.get_execution(execution_id) == failed
        # the same status again, and fields other than the status, may still be written
        again = store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.FAILED,
                                                                     failure_reason="boom, twice"))
        assert again.status is ExecutionStatus.FAILED and again.failure_reason == "boom, twice"

    def test_reopening_a_failed_execution_fences_every_earlier_owner(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        epoch = store.claim_execution(execution_id, "first", LEASE)
        assert epoch is not None
        store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.FAILED, failure_reason="boom",
                                                             ended_at=datetime.now(UTC)), epoch=epoch)
        reopened = store.reopen_execution(execution_id)
        assert reopened.status is ExecutionStatus.EXECUTING
        assert (reopened.failure_reason, reopened.ended_at, reopened.owner) == (None, None, None)
        assert reopened.epoch == epoch + 1 and reopened.heartbeat_at is not None
        with pytest.raises(StaleOwnerError):
            store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.SUCCEEDED), epoch=epoch)
        assert store.claim_execution(execution_id, "second", LEASE) == epoch + 2
        for unfinished_or_succeeded in (execution_id, self._succeeded(store)):
            with pytest.raises(ExecutionFinishedError, match="only a failed or stopped execution"):
                store.reopen_execution(unfinished_or_succeeded)

    def _succeeded(self, store: MetadataStore) -> str:
        execution_id = _execution(store, "exec-done")
        store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.SUCCEEDED))
        return execution_id

    def test_claiming_a_lost_execution_fences_its_owner(self, store: MetadataStore) -> None:
        execution_id = _execution(store)
        lost = store.claim_execution(execution_id, "lost", LEASE)
        assert lost is not None
        record = store.get_execution(execution_id)
        assert store.claim_lost_execution(execution_id, record.heartbeat_at)
        taken = store.get_execution(execution_id)
        assert (taken.owner, taken.lease_expires_at, taken.epoch) == (None, None, lost + 1)
        with pytest.raises(StaleOwnerError):
            store.start_attempt(execution_id, "a", log_path=None, epoch=lost)
        assert store.claim_execution(execution_id, "successor", LEASE) == lost + 2

    def test_stopping_a_queued_execution_stops_it_at_once(self, store: MetadataStore) -> None:
        execution_id = _execution(store, "exec-q", ExecutionStatus.QUEUED)
        stopped = store.request_stop(execution_id)
        assert stopped.status is ExecutionStatus.STOPPED and stopped.ended_at is not None
        assert store.claim_execution(execution_id, "late", LEASE) is None

    def test_the_queue_hands_out_the_oldest_execution_up_to_the_limit(self, store: MetadataStore) -> None:
        for index in range(3):
            _execution(store, f"exec-q{index}", ExecutionStatus.QUEUED)
        _execution(store, "exec-unowned")  # Executing without a lease (an orchestrator starting): not counted
        assert store.claim_next_queued("server", LEASE, max_running=2) == ("exec-q0", 1)
        assert store.claim_next_queued("server", LEASE, max_running=2) == ("exec-q1", 1)
        assert store.claim_next_queued("server", LEASE, max_running=2) is None  # two leases are live
        assert store.get_execution("exec-q2").status is ExecutionStatus.QUEUED
        store.update_execution("exec-q0", ExecutionUpdate(status=ExecutionStatus.SUCCEEDED), epoch=1)
        assert store.claim_next_queued("server", LEASE, max_running=2) == ("exec-q2", 1)
        assert store.claim_next_queued("server", LEASE, max_running=5) is None  # nothing left in the queue
        claimed = store.get_execution("exec-q2")
        assert (claimed.status, claimed.owner) == (ExecutionStatus.EXECUTING, "server")

    def test_an_expired_lease_frees_its_place_in_the_queue(self, store: MetadataStore) -> None:
        _execution(store, "exec-q0", ExecutionStatus.QUEUED)
        _execution(store, "exec-q1", ExecutionStatus.QUEUED)
        assert store.claim_next_queued("server", EXPIRED, max_running=1) == ("exec-q0", 1)
        assert store.claim_next_queued("server", LEASE, max_running=1) == ("exec-q1", 1)
