"""HousekeepingStoreContract: deleting finished executions and listing what stored locations are still referenced.

MetadataStoreContract inherits it, so every backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from forgeline.errors import ExecutionNotFoundError, StoreError
from forgeline.store.metadata.housekeeping_store import ArtifactReference, ReferenceHolder, SnapshotReference
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import (
    CacheEntry,
    ExecutionStatus,
    MetricPoint,
    ModelPackageDraft,
    StepStatus,
)
from forgeline.store.metadata.schedule_store import CatchupPolicy, OverlapPolicy, ScheduleDraft, StoredPipelineRef
from forgeline.store.metadata.trigger_store import TriggerDraft
from forgeline.store.metadata.updates import ExecutionUpdate, StepRunUpdate
from forgeline.workflow.models import ModelApprovalStatus

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


def _execution(store: MetadataStore, execution_id: str, *, ended: datetime | None = None,
               status: ExecutionStatus = ExecutionStatus.SUCCEEDED) -> None:
    version = store.save_pipeline_version("clean", {"steps": ["fit"]})
    store.create_execution(execution_id=execution_id, pipeline_name="clean", pipeline_version=version.version,
                           parameters={}, work_dir="/w", steps=[("fit", "training")])
    store.update_step_run(execution_id, "fit", StepRunUpdate(
        status=StepStatus.SUCCEEDED, outputs={"model": f"/artifacts/executions/{execution_id}/fit/model"},
        properties={"ReturnUri": f"s3://bucket/executions/{execution_id}/fit/return.pkl",
                    "nested": [{"deep": "/data/input.csv"}], "note": "not a location"}))
    if status.is_terminal:
        store.update_execution(execution_id, ExecutionUpdate(status=status, ended_at=ended or NOW))


def _cache_entry(execution_id: str, key: str) -> CacheEntry:
    return CacheEntry(cache_key=key, pipeline_name="clean", step_name="fit", step_kind="training",
                      execution_id=execution_id, components={}, created_at=NOW, properties={},
                      outputs={"model": f"/artifacts/executions/{execution_id}/fit/model"})


class HousekeepingStoreContract:
    """Shared tests; the including suite provides a fresh, empty `store`."""

    def test_deleting_a_finished_execution_takes_its_steps_attempts_and_metrics(self, store: MetadataStore) -> None:
        _execution(store, "exec-gone")
        _execution(store, "exec-kept")
        for execution_id in ("exec-gone", "exec-kept"):
            store.start_attempt(execution_id, "fit", log_path=None)
            store.add_metric_points([MetricPoint(execution_id, "fit", 1, "loss", 0.5, NOW, 0)])

        store.delete_execution("exec-gone")

        assert store.list_execution_ids() == {"exec-kept"}
        with pytest.raises(ExecutionNotFoundError):
            store.get_execution("exec-gone")
        assert len(store.list_attempts("exec-kept")) == 1 and len(store.list_metric_points("exec-kept")) == 1
        assert {r.execution_id for r in store.list_artifact_references()} == {"exec-kept"}
        _execution(store, "exec-gone")  # the same id again starts from nothing: nothing of the old one was left
        assert store.list_attempts("exec-gone") == [] and store.list_metric_points("exec-gone") == []
        assert [v.version for v in store.list_pipeline_versions("clean")] == [1]  # definitions stay

    def test_an_unfinished_execution_is_not_deleted(self, store: MetadataStore) -> None:
        _execution(store, "exec-live", status=ExecutionStatus.EXECUTING)

        with pytest.raises(StoreError, match="exec-live is Executing.*stop it first"):
            store.delete_execution("exec-live")
        with pytest.raises(ExecutionNotFoundError):
            store.delete_execution("exec-none")
        assert store.get_execution("exec-live").status == ExecutionStatus.EXECUTING

    def test_finished_executions_are_listed_by_end_oldest_first(self, store: MetadataStore) -> None:
        _execution(store, "exec-old", ended=NOW - timedelta(days=40))
        _execution(store, "exec-older", ended=NOW - timedelta(days=50))
        _execution(store, "exec-new", ended=NOW - timedelta(days=1))
        _execution(store, "exec-running", status=ExecutionStatus.EXECUTING)

        old = store.list_finished_executions(NOW - timedelta(days=30))

        assert [record.id for record in old] == ["exec-older", "exec-old"]
        assert store.list_execution_ids() == {"exec-old", "exec-older", "exec-new", "exec-running"}

    def test_cache_entries_are_listed_and_deleted_per_execution_and_key(self, store: MetadataStore) -> None:
        store.put_cache_entry(_cache_entry("exec-a", "a" * 64))
        store.put_cache_entry(_cache_entry("exec-a", "b" * 64))
        store.put_cache_entry(_cache_entry("exec-b", "a" * 64))

        assert store.delete_cache_entry("exec-a", "a" * 64) == 1

        assert [e.cache_key for e in store.list_cache_entries_of("exec-a")] == ["b" * 64]
        assert [e.execution_id for e in store.find_cache_entries("a" * 64)] == ["exec-b"]

    def test_references_name_every_location_and_who_holds_it(self, store: MetadataStore) -> None:
        _execution(store, "exec-a")
        store.put_cache_entry(_cache_entry("exec-a", "c" * 64))
        store.create_model_package(
            ModelPackageDraft(group="clean", approval_status=ModelApprovalStatus.APPROVED,
                              model_data="/artifacts/executions/exec-a/fit/model",
                              code_uri="/artifacts/model-packages/clean/exec-a-0123456789ab/code"),
            actor="ci")

        references = set(store.list_artifact_references())

        assert references == {
            ArtifactReference("/artifacts/executions/exec-a/fit/model", ReferenceHolder.STEP_RUN, "exec-a", "fit"),
            ArtifactReference("s3://bucket/executions/exec-a/fit/return.pkl", ReferenceHolder.STEP_RUN, "exec-a",
                              "fit"),
            ArtifactReference("/data/input.csv", ReferenceHolder.STEP_RUN, "exec-a", "fit"),
            ArtifactReference("/artifacts/executions/exec-a/fit/model", ReferenceHolder.CACHE_ENTRY, "exec-a",
                              "c" * 64),
            ArtifactReference("/artifacts/executions/exec-a/fit/model", ReferenceHolder.MODEL_PACKAGE, None,
                              "clean/1"),
            ArtifactReference("/artifacts/model-packages/clean/exec-a-0123456789ab/code",
                              ReferenceHolder.MODEL_PACKAGE, None, "clean/1"),
        }

    def test_snapshot_references_name_every_holder_and_whether_an_execution_still_runs(
            self, store: MetadataStore) -> None:
        snapshots = {name: name[0] * 64 for name in ("done", "running", "version", "schedule", "trigger")}
        version = store.save_pipeline_version("kept", {"steps": ["a"]}, snapshots["version"])
        for execution_id in ("done", "running"):
            store.create_execution(execution_id=f"exec-{execution_id}", pipeline_name="kept",
                                   pipeline_version=version.version, parameters={}, work_dir="/w", steps=[],
                                   code_snapshot=snapshots[execution_id])
        store.update_execution("exec-done", ExecutionUpdate(status=ExecutionStatus.SUCCEEDED, ended_at=NOW))
        pipeline = StoredPipelineRef("kept", version.version, snapshots["schedule"], None, "/w")
        store.create_schedule(ScheduleDraft("nightly", pipeline, "0 3 * * *", "UTC", {}, CatchupPolicy.NONE,
                                            OverlapPolicy.SKIP, NOW))
        store.create_trigger(TriggerDraft("arrivals", replace(pipeline, code_snapshot=snapshots["trigger"]),
                                          "/data/in", "*.csv", 5.0, {}))
        _execution(store, "exec-before-snapshots")  # names none

        references = set(store.list_snapshot_references())

        assert references == {
            SnapshotReference(snapshots["done"], "execution exec-done", "exec-done", running=False),
            SnapshotReference(snapshots["running"], "execution exec-running", "exec-running", running=True),
            SnapshotReference(snapshots["version"], f"pipeline kept v{version.version}"),
            SnapshotReference(snapshots["schedule"], "schedule nightly"),
            SnapshotReference(snapshots["trigger"], "trigger arrivals"),
        }
