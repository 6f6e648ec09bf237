"""MetadataStoreContract: behaviour every MetadataStore must have; subclass it and override `store`."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest

from contracts.alarm_store_contract import AlarmStoreContract
from contracts.cache_and_metrics_contract import CacheAndMetricsContract
from contracts.endpoint_store_contract import EndpointStoreContract
from contracts.execution_ownership_contract import ExecutionOwnershipContract
from contracts.housekeeping_store_contract import HousekeepingStoreContract
from contracts.model_registry_contract import ModelRegistryContract
from contracts.schedule_store_contract import ScheduleStoreContract
from contracts.server_store_contract import ServerStoreContract
from contracts.step_events_contract import StepEventsContract
from contracts.step_transition_contract import StepTransitionContract
from forgeline.errors import ExecutionNotFoundError, PipelineNotFoundError, StepNotFoundError, StoreError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionStatus, StepStatus
from forgeline.store.metadata.updates import ExecutionUpdate, StepRunUpdate

DEFINITION: dict[str, Any] = {
    "version": "1",
    "steps": [{"name": "prepare", "kind": "processing", "arguments": {"n": 3, "ratio": 0.25, "on": True}}],
    "parameters": [{"name": "lr", "default": None}],
    "description": "ünïcode ✓",
}
STEPS = [("prepare", "processing"), ("train", "training"), ("evaluate", "processing")]


class _Kind(StrEnum):
    JOB_FAILED = "JobFailed"


def _is_utc(value: datetime | None) -> bool:
    return value is not None and value.tzinfo is not None and value.utcoffset() == timedelta(0)


class MetadataStoreContract(CacheAndMetricsContract, ModelRegistryContract, EndpointStoreContract,
                            HousekeepingStoreContract, ExecutionOwnershipContract, StepEventsContract,
                            StepTransitionContract, ServerStoreContract, AlarmStoreContract,
                            ScheduleStoreContract):
    """Shared tests; a backend's test module subclasses this and provides a fresh, empty `store`."""

    @pytest.fixture
    def store(self) -> MetadataStore:
        """A fresh, empty store (override in the backend's test class)."""
        raise NotImplementedError("override the store fixture")

    def _execution(
        self,
        store: MetadataStore,
        execution_id: str = "exec-0001",
        steps: list[tuple[str, str]] | None = None,
        pipeline: str = "train",
    ) -> str:
        version = store.save_pipeline_version(pipeline, DEFINITION)
        store.create_execution(
            execution_id=execution_id,
            pipeline_name=pipeline,
            pipeline_version=version.version,
            parameters={"lr": 0.1, "tags": ["a", "b"]},
            work_dir=f"/jobs/{execution_id}",
            steps=STEPS if steps is None else steps,
        )
        return execution_id

    # -- pipeline versions --------------------------------------------------------------------------------

    def test_first_save_is_version_one_with_canonical_sha256_digest(self, store: MetadataStore) -> None:
        saved = store.save_pipeline_version("train", DEFINITION)
        canonical = json.dumps(DEFINITION, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert saved.version == 1
        assert saved.pipeline_name == "train"
        assert saved.digest == hashlib.sha256(canonical.encode()).hexdigest()
        assert saved.definition == DEFINITION
        assert _is_utc(saved.created_at)

    def test_same_definition_in_another_key_order_reuses_newest_version(self, store: MetadataStore) -> None:
        first = store.save_pipeline_version("train", {"a": 1, "b": {"y": 2, "x": 1}})
        again = store.save_pipeline_version("train", {"b": {"x": 1, "y": 2}, "a": 1})
        assert again == first
        assert [v.version for v in store.list_pipeline_versions("train")] == [1]

    def test_changed_definition_gets_next_version_and_a_reverted_one_its_old_version(self, store: MetadataStore) -> None:
        store.save_pipeline_version("train", {"a": 1})
        assert store.save_pipeline_version("train", {"a": 2}).version == 2
        # A definition stored before is that version again: unchanged definitions never make new versions.
        assert store.save_pipeline_version("train", {"a": 1}).version == 1
        assert store.save_pipeline_version("train", {"a": 3}).version == 3
        assert [v.version for v in store.list_pipeline_versions("train")] == [1, 2, 3]
        assert store.save_pipeline_version("other", {"a": 1}).version == 1

    def test_a_version_remembers_the_code_snapshot_of_its_latest_save(self, store: MetadataStore) -> None:
        first = store.save_pipeline_version("train", {"a": 1}, code_snapshot="a" * 64)
        assert first.code_snapshot == "a" * 64
        assert store.save_pipeline_version("train", {"a": 1}).code_snapshot == "a" * 64  # none given: kept
        again = store.save_pipeline_version("train", {"a": 1}, code_snapshot="b" * 64)
        assert (again.version, again.code_snapshot) == (1, "b" * 64)
        assert store.get_pipeline_version("train", 1).code_snapshot == "b" * 64
        assert store.save_pipeline_version("train", {"a": 2}).code_snapshot is None

    def test_an_execution_records_who_started_it(self, store: MetadataStore) -> None:
        version = store.save_pipeline_version("train", DEFINITION)
        record = store.create_execution(execution_id="exec-by", pipeline_name="train",
                                        pipeline_version=version.version, parameters={}, work_dir="/w",
                                        steps=STEPS, started_by={"kind": "schedule", "name": "weekly"},
                                        code_snapshot="c" * 64)
        assert record.started_by == {"kind": "schedule", "name": "weekly"}
        assert store.get_execution("exec-by").started_by == {"kind": "schedule", "name": "weekly"}
        assert store.get_execution("exec-by").code_snapshot == "c" * 64
        self._execution(store, "exec-none")
        assert store.get_execution("exec-none").started_by is None

    def test_get_pipeline_version_newest_or_specific(self, store: MetadataStore) -> None:
        store.save_pipeline_version("train", {"a": 1})
        store.save_pipeline_version("train", {"a": 2})
        assert store.get_pipeline_version("train").definition == {"a": 2}
        assert store.get_pipeline_version("train", 1).definition == {"a": 1}
        assert store.get_pipeline_version("train", 2) == store.list_pipeline_versions("train")[1]

    def test_missing_pipeline_or_version_raises_naming_it(self, store: MetadataStore) -> None:
        with pytest.raises(PipelineNotFoundError, match="no pipeline 'nope'"):
            store.get_pipeline_version("nope")
        store.save_pipeline_version("train", {"a": 1})
        with pytest.raises(PipelineNotFoundError, match="'train' has no version 7"):
            store.get_pipeline_version("train", 7)
        with pytest.raises(PipelineNotFoundError, match="nope"):
            store.list_pipeline_versions("nope")

    def test_list_pipeline_versions_oldest_first(self, store: MetadataStore) -> None:
        for value in range(3):
            store.save_pipeline_version("train", {"a": value})
        versions = store.list_pipeline_versions("train")
        assert [(v.version, v.definition) for v in versions] == [(1, {"a": 0}), (2, {"a": 1}), (3, {"a": 2})]

    def test_list_pipelines_by_name_with_newest_version_and_execution_count(self, store: MetadataStore) -> None:
        assert store.list_pipelines() == []
        self._execution(store, "exec-0001", pipeline="zeta")
        self._execution(store, "exec-0002", pipeline="zeta")
        store.save_pipeline_version("alpha", {"a": 1})
        newest = store.save_pipeline_version("alpha", {"a": 2})
        summaries = store.list_pipelines()
        assert [(s.name, s.latest_version, s.execution_count) for s in summaries] == [("alpha", 2, 0), ("zeta", 1, 2)]
        assert summaries[0].updated_at == newest.created_at
        assert all(_is_utc(s.created_at) and _is_utc(s.updated_at) for s in summaries)

    def test_definition_json_round_trips(self, store: MetadataStore) -> None:
        definition = {"nested": {"list": [1, 2.5, None, True, "ß"], "empty": {}}, "big": 2**53}
        store.save_pipeline_version("train", definition)
        assert store.get_pipeline_version("train").definition == definition

    # -- executions ---------------------------------------------------------------------------------------

    def test_create_execution_is_executing_with_pending_steps_in_order(self, store: MetadataStore) -> None:
        store.save_pipeline_version("train", DEFINITION)
        record = store.create_execution(
            execution_id="exec-0001",
            pipeline_name="train",
            pipeline_version=1,
            parameters={"lr": 0.1, "nested": {"k": [1, "two"]}},
            work_dir="/jobs/exec-0001",
            steps=[("z-last-alphabetically", "processing"), ("a-first", "training")],
        )
        assert record.status is ExecutionStatus.EXECUTING
        assert record.parameters == {"lr": 0.1, "nested": {"k": [1, "two"]}}
        assert record.work_dir == "/jobs/exec-0001"
        assert record.created_at == record.started_at and _is_utc(record.created_at)
        assert record.ended_at is None and record.failure_reason is None
        runs = store.list_step_runs("exec-0001")
        assert [(r.name, r.kind, r.status) for r in runs] == [
            ("z-last-alphabetically", "processing", StepStatus.PENDING),
            ("a-first", "training", StepStatus.PENDING),
        ]
        assert runs[0].attempts == 0 and runs[0].outputs == {} and runs[0].cache_hit is False
        assert store.get_execution("exec-0001") == record

    def test_create_execution_of_unsaved_pipeline_version_raises(self, store: MetadataStore) -> None:
        store.save_pipeline_version("train", DEFINITION)
        with pytest.raises(PipelineNotFoundError, match="'train' version 2"):
            store.create_execution(
                execution_id="e1", pipeline_name="train", pipeline_version=2, parameters={}, work_dir="/w", steps=[]
            )

    def test_create_execution_twice_raises_and_keeps_the_first(self, store: MetadataStore) -> None:
        self._execution(store, "exec-0001")
        with pytest.raises(StoreError, match="already exists"):
            self._execution(store, "exec-0001", steps=[("other", "processing")])
        assert [r.name for r in store.list_step_runs("exec-0001")] == [name for name, _ in STEPS]

    def test_create_execution_refuses_duplicate_step_names(self, store: MetadataStore) -> None:
        with pytest.raises(ValueError, match="duplicate step names"):
            self._execution(store, "exec-0001", steps=[("a", "processing"), ("a", "training")])
        with pytest.raises(ExecutionNotFoundError):
            store.get_execution("exec-0001")

    def test_get_execution_by_unique_prefix(self, store: MetadataStore) -> None:
        self._execution(store, "4f2a9c1e-aaaa")
        self._execution(store, "4f2b0000-bbbb")
        assert store.get_execution("4f2a").id == "4f2a9c1e-aaaa"
        assert store.get_execution("4f2b0000-bbbb").id == "4f2b0000-bbbb"

    def test_get_execution_ambiguous_prefix_says_how_many(self, store: MetadataStore) -> None:
        for suffix in ("1", "2", "3"):
            self._execution(store, f"abcd-{suffix}")
        with pytest.raises(ExecutionNotFoundError, match="ambiguous prefix 'abcd' matches 3 executions"):
            store.get_execution("abcd")

    def test_get_execution_short_unknown_or_wildcard_prefixes_are_not_found(self, store: MetadataStore) -> None:
        self._execution(store, "abcdef-1")
        with pytest.raises(ExecutionNotFoundError, match="no execution 'abc'"):
            store.get_execution("abc")
        with pytest.raises(ExecutionNotFoundError, match="no execution 'zzzz'"):
            store.get_execution("zzzz")
        with pytest.raises(ExecutionNotFoundError):
            store.get_execution("ABCDEF")  # prefixes are case-sensitive
        with pytest.raises(ExecutionNotFoundError):
            store.get_execution("abc_")  # '_' and '%' are literal characters, not wildcards
        with pytest.raises(ExecutionNotFoundError):
            store.get_execution("abc%")

    def test_list_executions_newest_first_filtered_and_limited(self, store: MetadataStore) -> None:
        for index in range(4):
            self._execution(store, f"exec-a{index}", pipeline="a")
        self._execution(store, "exec-b0", pipeline="b")
        assert [e.id for e in store.list_executions()] == ["exec-b0", "exec-a3", "exec-a2", "exec-a1", "exec-a0"]
        assert [e.id for e in store.list_executions("a", limit=2)] == ["exec-a3", "exec-a2"]
        assert store.list_executions("missing") == []

    def test_update_execution_sets_fields_and_returns_the_record(self, store: MetadataStore) -> None:
        self._execution(store)
        ended = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=2)))
        updated = store.update_execution("exec-0001", ExecutionUpdate(
            status=ExecutionStatus.FAILED,
            ended_at=ended,
            failure_reason="step 'train' failed",
            orchestrator_pid=4242,
            heartbeat_at=ended,
            code_snapshot="sha256-abc",
        ))
        assert updated.status is ExecutionStatus.FAILED
        assert updated.ended_at == ended and _is_utc(updated.ended_at)
        assert updated.ended_at is not None and updated.ended_at.hour == 1  # 03:04+02:00 is 01:04 UTC
        assert (updated.failure_reason, updated.orchestrator_pid) == ("step 'train' failed", 4242)
        assert updated.code_snapshot == "sha256-abc"
        assert store.get_execution("exec-0001") == updated

    def test_an_empty_update_changes_nothing_and_none_clears_a_field(self, store: MetadataStore) -> None:
        self._execution(store)
        before = store.update_execution("exec-0001", ExecutionUpdate(failure_reason="why"))
        assert store.update_execution("exec-0001", ExecutionUpdate()) == before
        assert store.update_execution("exec-0001", ExecutionUpdate(failure_reason=None)).failure_reason is None

    def test_update_execution_refuses_unknown_fields_and_naive_datetimes(self, store: MetadataStore) -> None:
        self._execution(store)
        with pytest.raises(TypeError, match="pipeline_name"):
            ExecutionUpdate(pipeline_name="other")  # type: ignore[call-arg]
        with pytest.raises(ValueError, match="naive"):
            store.update_execution("exec-0001", ExecutionUpdate(ended_at=datetime(2030, 1, 1)))
        with pytest.raises(ValueError):
            store.update_execution("exec-0001", ExecutionUpdate(status="Sleeping"))  # type: ignore[arg-type]
        assert store.get_execution("exec-0001").status is ExecutionStatus.EXECUTING

    def test_parent_execution_is_recorded_set_and_cleared(self, store: MetadataStore) -> None:
        self._execution(store, "exec-0001")
        assert store.get_execution("exec-0001").parent_execution_id is None
        version = store.get_pipeline_version("train").version
        child = store.create_execution(
            execution_id="exec-0002",
            pipeline_name="train",
            pipeline_version=version,
            parameters={},
            work_dir="/jobs/exec-0002",
            steps=STEPS,
            parent_execution_id="exec-0001",
        )
        assert child.parent_execution_id == "exec-0001"
        assert store.get_execution("exec-0002") == child
        self._execution(store, "exec-0003")
        assert store.update_execution(
            "exec-0003", ExecutionUpdate(parent_execution_id="exec-0002")).parent_execution_id == "exec-0002"
        assert store.update_execution(
            "exec-0003", ExecutionUpdate(parent_execution_id=None)).parent_execution_id is None

    def test_parent_execution_must_exist(self, store: MetadataStore) -> None:
        self._execution(store, "exec-0001")
        with pytest.raises(ExecutionNotFoundError, match="no parent execution 'exec-0'"):
            store.create_execution(
                execution_id="exec-0002",
                pipeline_name="train",
                pipeline_version=1,
                parameters={},
                work_dir="/w",
                steps=STEPS,
                parent_execution_id="exec-0",  # a prefix is not enough
            )
        with pytest.raises(ExecutionNotFoundError):
            store.get_execution("exec-0002")
        with pytest.raises(ExecutionNotFoundError, match="no parent execution 'gone'"):
            store.update_execution("exec-0001", ExecutionUpdate(parent_execution_id="gone", failure_reason="x"))
        assert store.get_execution("exec-0001").failure_reason is None

    def test_update_of_missing_execution_raises(self, store: MetadataStore) -> None:
        with pytest.raises(ExecutionNotFoundError, match="no execution 'nope'"):
            store.update_execution("nope", ExecutionUpdate(failure_reason="x"))
        with pytest.raises(ExecutionNotFoundError):
            store.request_stop("nope")

    def test_request_stop_moves_only_executing_to_stopping(self, store: MetadataStore) -> None:
        self._execution(store, "exec-0001")
        assert store.request_stop("exec-0001").status is ExecutionStatus.STOPPING
        assert store.request_stop("exec-0001").status is ExecutionStatus.STOPPING
        self._execution(store, "exec-0002")
        finished = store.update_execution("exec-0002", ExecutionUpdate(status=ExecutionStatus.SUCCEEDED))
        assert store.request_stop("exec-0002") == finished

    def test_claim_lost_execution_has_one_winner_per_heartbeat_seen(self, store: MetadataStore) -> None:
        self._execution(store, "exec-0001")
        assert store.claim_lost_execution("exec-0001", None)  # an orchestrator that never beat
        seen = store.update_execution("exec-0001", ExecutionUpdate(
            orchestrator_pid=4242, heartbeat_at=datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)))
        reread = store.get_execution("exec-0001")  # the value a reader holds, as the backend hands it back
        assert store.claim_lost_execution("exec-0001", reread.heartbeat_at)
        assert not store.claim_lost_execution("exec-0001", seen.heartbeat_at)  # claimed: the heartbeat moved
        claimed = store.get_execution("exec-0001")
        assert claimed.orchestrator_pid is None and claimed.heartbeat_at is not None
        assert claimed.heartbeat_at > reread.heartbeat_at
        finished = store.update_execution("exec-0001", ExecutionUpdate(status=ExecutionStatus.FAILED))
        assert not store.claim_lost_execution("exec-0001", finished.heartbeat_at)

    # -- step runs ----------------------------------------------------------------------------------------

    def test_update_step_run_round_trips_every_field(self, store: MetadataStore) -> None:
        self._execution(store)
        started = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
        updated = store.update_step_run("exec-0001", "train", StepRunUpdate(
            status=StepStatus.SUCCEEDED,
            started_at=started,
            ended_at=started + timedelta(seconds=3),
            attempts=2,
            failure_reason=None,
            outputs={"model": "s3://bucket/model"},
            properties={"Metrics": {"auc": 0.9}, "list": [1, None]},
            cache_hit=True,
            cache_source="exec-0000",
            metrics={"loss": 0.125, "acc": 1.0},
        ))
        assert updated.status is StepStatus.SUCCEEDED
        assert updated.started_at == started and _is_utc(updated.ended_at)
        assert updated.outputs == {"model": "s3://bucket/model"}
        assert updated.properties == {"Metrics": {"auc": 0.9}, "list": [1, None]}
        assert (updated.cache_hit, updated.cache_source, updated.attempts) == (True, "exec-0000", 2)
        assert updated.metrics == {"loss": 0.125, "acc": 1.0}
        assert store.get_step_run("exec-0001", "train") == updated
        assert store.get_step_run("exec-0001", "prepare").status is StepStatus.PENDING

    def test_update_step_run_refuses_identity_and_unknown_fields(self, store: MetadataStore) -> None:
        for field in ("kind", "colour", "position", "name", "execution_id"):
            with pytest.raises(TypeError, match=field):
                StepRunUpdate(**{field: "x"})

    def test_none_empties_a_step_runs_documents(self, store: MetadataStore) -> None:
        self._execution(store)
        store.update_step_run("exec-0001", "train", StepRunUpdate(outputs={"m": "/m"}, properties={"p": 1}))
        cleared = store.update_step_run("exec-0001", "train", StepRunUpdate(outputs=None, properties=None))
        assert (cleared.outputs, cleared.properties) == ({}, {})

    def test_missing_step_or_execution_raises_the_right_error(self, store: MetadataStore) -> None:
        self._execution(store)
        with pytest.raises(StepNotFoundError, match="no step 'nope'.*prepare, train, evaluate"):
            store.get_step_run("exec-0001", "nope")
        with pytest.raises(StepNotFoundError):
            store.update_step_run("exec-0001", "nope", StepRunUpdate(status=StepStatus.FAILED))
        with pytest.raises(ExecutionNotFoundError):
            store.get_step_run("missing", "train")
        with pytest.raises(ExecutionNotFoundError):
            store.list_step_runs("missing")

    def test_add_step_runs_appends_pending_and_ignores_existing_names(self, store: MetadataStore) -> None:
        self._execution(store)
        store.update_step_run("exec-0001", "train", StepRunUpdate(status=StepStatus.EXECUTING))
        store.add_step_runs("exec-0001", [("train", "training"), ("fan-1", "processing"), ("fan-0", "processing")])
        store.add_step_runs("exec-0001", [("fan-1", "processing"), ("fan-2", "processing")])
        runs = store.list_step_runs("exec-0001")
        assert [r.name for r in runs] == ["prepare", "train", "evaluate", "fan-1", "fan-0", "fan-2"]
        assert runs[1].status is StepStatus.EXECUTING and runs[3].status is StepStatus.PENDING
        with pytest.raises(ExecutionNotFoundError):
            store.add_step_runs("missing", [("a", "processing")])

    # -- attempts -----------------------------------------------------------------------------------------

    def test_attempts_count_up_per_step_and_show_on_the_step_run(self, store: MetadataStore) -> None:
        self._execution(store)
        first = store.start_attempt("exec-0001", "train", log_path="/logs/train/1.log")
        assert (first.attempt, first.status, first.log_path) == (1, StepStatus.EXECUTING, "/logs/train/1.log")
        assert _is_utc(first.started_at) and first.ended_at is None
        store.finish_attempt("exec-0001", "train", 1, status=StepStatus.FAILED)
        assert store.start_attempt("exec-0001", "train", log_path=None).attempt == 2
        assert store.start_attempt("exec-0001", "prepare", log_path=None).attempt == 1
        assert store.get_step_run("exec-0001", "train").attempts == 2
        assert store.get_step_run("exec-0001", "evaluate").attempts == 0

    def test_finish_attempt_records_outcome(self, store: MetadataStore) -> None:
        self._execution(store)
        started = store.start_attempt("exec-0001", "train", log_path=None)
        finished = store.finish_attempt(
            "exec-0001",
            "train",
            1,
            status=StepStatus.FAILED,
            failure_kind=_Kind.JOB_FAILED,
            failure_reason="exit code 3",
        )
        assert finished.status is StepStatus.FAILED
        assert (finished.failure_kind, finished.failure_reason) == ("JobFailed", "exit code 3")
        assert finished.started_at == started.started_at
        assert finished.ended_at is not None and _is_utc(finished.ended_at)
        assert finished.ended_at >= finished.started_at
        assert store.list_attempts("exec-0001", "train") == [finished]

    def test_finish_or_start_of_missing_attempt_raises(self, store: MetadataStore) -> None:
        self._execution(store)
        with pytest.raises(StepNotFoundError, match="no attempt 1"):
            store.finish_attempt("exec-0001", "train", 1, status=StepStatus.SUCCEEDED)
        with pytest.raises(StepNotFoundError):
            store.start_attempt("exec-0001", "nope", log_path=None)
        with pytest.raises(ExecutionNotFoundError):
            store.start_attempt("missing", "train", log_path=None)

    def test_list_attempts_in_start_order(self, store: MetadataStore) -> None:
        self._execution(store)
        store.start_attempt("exec-0001", "train", log_path=None)
        store.start_attempt("exec-0001", "prepare", log_path=None)
        store.start_attempt("exec-0001", "train", log_path=None)
        every = store.list_attempts("exec-0001")
        assert [(a.step_name, a.attempt) for a in every] == [("train", 1), ("prepare", 1), ("train", 2)]
        assert [a.attempt for a in store.list_attempts("exec-0001", "train")] == [1, 2]
        assert store.list_attempts("exec-0001", "evaluate") == []
        with pytest.raises(ExecutionNotFoundError):
            store.list_attempts("missing")

