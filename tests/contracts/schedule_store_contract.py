"""ScheduleStoreContract: schedules, their fires, file triggers and their objects, as every MetadataStore keeps them.

MetadataStoreContract inherits it, so a backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from forgeline.errors import ScheduleError, ScheduleNotFoundError, TriggerError, TriggerNotFoundError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.schedule_store import (
    CatchupPolicy,
    FireOutcome,
    OverlapPolicy,
    ScheduleDraft,
    StoredPipelineRef,
)
from forgeline.store.metadata.trigger_store import ObjectOutcome, TriggerDraft

PIPELINE = StoredPipelineRef("packaging-training", 3, "ab" * 32, "/project/training.py", "/project")
DUE = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)


def _schedule(name: str = "weekly") -> ScheduleDraft:
    return ScheduleDraft(name, PIPELINE, "0 6 * * MON", "Europe/Berlin", {"PackageType": "bag", "Ratio": 0.8},
                         CatchupPolicy.LAST, OverlapPolicy.SKIP, DUE)


def _trigger(name: str = "exports") -> TriggerDraft:
    return TriggerDraft(name, PIPELINE, "s3://exports/training/", "*.json", 5.0, {"PackageType": "box"})


class ScheduleStoreContract:
    """Shared tests of the schedules and triggers part of a MetadataStore (the subclass provides ``store``)."""

    def test_a_schedule_is_kept_whole_and_listed_by_name(self, store: MetadataStore) -> None:
        created = store.create_schedule(_schedule("weekly"))
        store.create_schedule(_schedule("daily"))
        assert (created.pipeline, created.cron, created.timezone, created.parameters) == (
            PIPELINE, "0 6 * * MON", "Europe/Berlin", {"PackageType": "bag", "Ratio": 0.8})
        assert (created.catchup, created.overlap, created.paused, created.next_fire_at) == (
            CatchupPolicy.LAST, OverlapPolicy.SKIP, False, DUE)
        assert created.last_fire_at is None and created.last_outcome is None
        assert store.get_schedule("weekly") == created
        assert [record.name for record in store.list_schedules()] == ["daily", "weekly"]

    def test_a_taken_schedule_name_is_refused_and_an_unknown_one_named(self, store: MetadataStore) -> None:
        store.create_schedule(_schedule())
        with pytest.raises(ScheduleError, match="already exists"):
            store.create_schedule(_schedule())
        with pytest.raises(ScheduleNotFoundError, match="no schedule 'monthly' .*weekly"):
            store.get_schedule("monthly")

    def test_a_due_time_is_claimed_once_and_moves_the_schedule_on(self, store: MetadataStore) -> None:
        store.create_schedule(_schedule())
        following = DUE + timedelta(days=7)
        assert store.claim_schedule_fire("weekly", DUE, following)
        assert not store.claim_schedule_fire("weekly", DUE, following)
        record = store.get_schedule("weekly")
        assert (record.next_fire_at, record.last_fire_at, record.last_outcome) == (following, DUE, FireOutcome.PENDING)
        assert [fire.due_at for fire in store.list_schedule_fires(outcome=FireOutcome.PENDING)] == [DUE]
        store.finish_schedule_fire("weekly", DUE, FireOutcome.STARTED, execution_id="e1")
        record = store.get_schedule("weekly")
        assert (record.last_execution_id, record.last_outcome) == ("e1", FireOutcome.STARTED)
        assert store.list_schedule_fires(outcome=FireOutcome.PENDING) == []

    def test_fires_are_listed_newest_first_with_outcomes_and_reasons(self, store: MetadataStore) -> None:
        store.create_schedule(_schedule())
        for days in range(3):
            due = DUE + timedelta(days=7 * days)
            store.claim_schedule_fire("weekly", due, due + timedelta(days=7))
        store.finish_schedule_fire("weekly", DUE + timedelta(days=7), FireOutcome.SKIPPED, reason="still running")
        fires = store.list_schedule_fires("weekly", limit=2)
        assert [fire.due_at for fire in fires] == [DUE + timedelta(days=14), DUE + timedelta(days=7)]
        assert (fires[1].outcome, fires[1].reason, fires[1].execution_id) == (FireOutcome.SKIPPED, "still running",
                                                                              None)

    def test_pause_skip_and_delete(self, store: MetadataStore) -> None:
        store.create_schedule(_schedule())
        paused = store.set_schedule_paused("weekly", True, None)
        assert (paused.paused, paused.next_fire_at) == (True, None)
        resumed = store.set_schedule_paused("weekly", False, DUE + timedelta(days=7))
        assert (resumed.paused, resumed.next_fire_at) == (False, DUE + timedelta(days=7))
        store.skip_schedule_to("weekly", DUE + timedelta(days=14))
        assert store.get_schedule("weekly").next_fire_at == DUE + timedelta(days=14)
        store.claim_schedule_fire("weekly", DUE, DUE + timedelta(days=7))
        store.delete_schedule("weekly")
        assert store.list_schedules() == [] and store.list_schedule_fires() == []
        with pytest.raises(ScheduleNotFoundError):
            store.delete_schedule("weekly")

    def test_a_trigger_is_kept_whole_and_counts_what_it_saw(self, store: MetadataStore) -> None:
        created = store.create_trigger(_trigger())
        assert (created.pipeline, created.watch, created.pattern, created.poll_seconds, created.parameters) == (
            PIPELINE, "s3://exports/training/", "*.json", 5.0, {"PackageType": "box"})
        assert (created.paused, created.objects_seen, created.last_event_at, created.last_execution_id) == (
            False, 0, None, None)
        with pytest.raises(TriggerError, match="already exists"):
            store.create_trigger(_trigger())
        with pytest.raises(TriggerNotFoundError, match="no trigger 'other' .*exports"):
            store.get_trigger("other")

    def test_an_object_version_is_claimed_once(self, store: MetadataStore) -> None:
        store.create_trigger(_trigger())
        claimed = store.claim_trigger_object("exports", "exports/training/a.json", "etag-1")
        assert claimed is not None and claimed.outcome == FireOutcome.PENDING
        assert store.claim_trigger_object("exports", "exports/training/a.json", "etag-1") is None
        rewritten = store.claim_trigger_object("exports", "exports/training/a.json", "etag-2")
        assert rewritten is not None and rewritten.id != claimed.id
        store.finish_trigger_object(claimed.id, FireOutcome.STARTED, execution_id="e1")
        assert store.list_trigger_object_versions("exports") == {("exports/training/a.json", "etag-1"),
                                                                 ("exports/training/a.json", "etag-2")}
        assert [row.id for row in store.list_trigger_objects(outcome=FireOutcome.PENDING)] == [rewritten.id]
        record = store.get_trigger("exports")
        assert (record.objects_seen, record.last_execution_id) == (2, "e1")
        assert record.last_event_at is not None

    def test_objects_are_claimed_and_finished_in_batches_skipping_those_seen(self, store: MetadataStore) -> None:
        store.create_trigger(_trigger())
        assert store.claim_trigger_object("exports", "a", "1") is not None
        claimed = store.claim_trigger_objects("exports", [("a", "1"), ("b", "1"), ("c", "1")])
        assert [(row.key, row.outcome) for row in claimed] == [("b", FireOutcome.PENDING), ("c", FireOutcome.PENDING)]
        store.finish_trigger_objects([ObjectOutcome(claimed[0].id, FireOutcome.STARTED, execution_id="e-b"),
                                      ObjectOutcome(claimed[1].id, FireOutcome.FAILED, reason="no such version")])
        rows = {row.key: row for row in store.list_trigger_objects("exports")}
        assert (rows["b"].outcome, rows["b"].execution_id) == (FireOutcome.STARTED, "e-b")
        assert (rows["c"].outcome, rows["c"].reason) == (FireOutcome.FAILED, "no such version")
        assert rows["a"].outcome == FireOutcome.PENDING

    def test_a_rejected_object_is_recorded_once_with_its_reason(self, store: MetadataStore) -> None:
        store.create_trigger(_trigger())
        payload = {"trigger": "exports", "uri": "s3://exports/training/b.json", "reason": "not valid JSON"}
        assert store.reject_trigger_object("exports", "exports/training/b.json", "etag", "not valid JSON", payload)
        assert not store.reject_trigger_object("exports", "exports/training/b.json", "etag", "again", payload)
        [row] = store.list_trigger_objects("exports")
        assert (row.outcome, row.reason, row.execution_id) == (FireOutcome.REJECTED, "not valid JSON", None)

    def test_trigger_pause_and_delete(self, store: MetadataStore) -> None:
        store.create_trigger(_trigger())
        store.claim_trigger_object("exports", "k", "v")
        assert store.set_trigger_paused("exports", True).paused
        assert not store.set_trigger_paused("exports", False).paused
        store.delete_trigger("exports")
        assert store.list_triggers() == [] and store.list_trigger_objects() == []
