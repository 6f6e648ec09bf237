"""CacheAndMetricsContract: the step cache, content index and metric series every MetadataStore must keep.

MetadataStoreContract inherits it, so a backend that subclasses that suite runs these tests too.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from forgeline.errors import ExecutionNotFoundError, StepNotFoundError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import CacheEntry, ContentIndexEntry, MetricPoint

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
KEY = "a" * 64
OTHER_KEY = "b" * 64


def _entry(
    created_at: datetime,
    *,
    cache_key: str = KEY,
    pipeline: str = "train",
    step: str = "fit",
    execution_id: str = "exec-0001",
) -> CacheEntry:
    return CacheEntry(
        cache_key=cache_key,
        pipeline_name=pipeline,
        step_name=step,
        step_kind="training",
        execution_id=execution_id,
        components={"code:fit.py": "c0ffee", "input:train": "d1gest", "parameter:TrainRatio": "0.7"},
        outputs={"model": f"file:///artifacts/{execution_id}/model"},
        properties={"FinalMetrics": {"auc": 0.91}, "Tags": ["x", None]},
        created_at=created_at,
    )


def _point(step: str, attempt: int, seq: int, name: str = "loss", value: float = 0.5) -> MetricPoint:
    return MetricPoint(
        execution_id="exec-0001",
        step_name=step,
        attempt=attempt,
        name=name,
        value=value,
        timestamp=T0 + timedelta(seconds=seq),
        seq=seq,
    )


def _start_execution(store: MetadataStore, steps: list[tuple[str, str]]) -> None:
    version = store.save_pipeline_version("train", {"steps": [name for name, _ in steps]})
    store.create_execution(
        execution_id="exec-0001",
        pipeline_name="train",
        pipeline_version=version.version,
        parameters={},
        work_dir="/jobs/exec-0001",
        steps=steps,
    )


class CacheAndMetricsContract:
    """Shared tests; the subclass provides a fresh, empty `store`."""

    @pytest.fixture
    def store(self) -> MetadataStore:
        """A fresh, empty store (override in the backend's test class)."""
        raise NotImplementedError("override the store fixture")

    # -- cache entries ------------------------------------------------------------------------------------

    def test_cache_entry_round_trips(self, store: MetadataStore) -> None:
        entry = _entry(datetime(2030, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))))
        store.put_cache_entry(entry)
        [found] = store.find_cache_entries(KEY)
        assert found == entry
        assert found.created_at.utcoffset() == timedelta(0) and found.created_at == T0

    def test_find_cache_entries_newest_first_limited_to_the_key(self, store: MetadataStore) -> None:
        for minutes, execution_id in [(1, "exec-b"), (3, "exec-d"), (0, "exec-a"), (2, "exec-c")]:
            store.put_cache_entry(_entry(T0 + timedelta(minutes=minutes), execution_id=execution_id))
        store.put_cache_entry(_entry(T0 + timedelta(hours=1), cache_key=OTHER_KEY, execution_id="exec-other"))
        assert [e.execution_id for e in store.find_cache_entries(KEY)] == ["exec-d", "exec-c", "exec-b", "exec-a"]
        assert [e.execution_id for e in store.find_cache_entries(KEY, limit=2)] == ["exec-d", "exec-c"]
        assert store.find_cache_entries("f" * 64) == []

    def test_entries_put_at_the_same_instant_come_back_last_put_first(self, store: MetadataStore) -> None:
        for execution_id in ("exec-1", "exec-2", "exec-3"):
            store.put_cache_entry(_entry(T0, execution_id=execution_id))
        assert [e.execution_id for e in store.find_cache_entries(KEY)] == ["exec-3", "exec-2", "exec-1"]

    def test_find_cache_entries_not_before_is_inclusive(self, store: MetadataStore) -> None:
        for minutes in range(4):
            store.put_cache_entry(_entry(T0 + timedelta(minutes=minutes), execution_id=f"exec-{minutes}"))
        recent = store.find_cache_entries(KEY, not_before=T0 + timedelta(minutes=2))
        assert [e.execution_id for e in recent] == ["exec-3", "exec-2"]
        assert store.find_cache_entries(KEY, not_before=T0 + timedelta(days=1)) == []

    def test_cache_refuses_naive_datetimes(self, store: MetadataStore) -> None:
        with pytest.raises(ValueError, match="naive"):
            store.put_cache_entry(_entry(datetime(2030, 1, 1)))
        with pytest.raises(ValueError, match="not_before.*naive"):
            store.find_cache_entries(KEY, not_before=datetime(2030, 1, 1))
        assert store.find_cache_entries(KEY) == []

    def test_latest_cache_entry_is_the_steps_newest_whatever_its_key(self, store: MetadataStore) -> None:
        assert store.latest_cache_entry("train", "fit") is None
        store.put_cache_entry(_entry(T0, execution_id="exec-old"))
        newest = _entry(T0 + timedelta(minutes=1), cache_key=OTHER_KEY, execution_id="exec-new")
        store.put_cache_entry(newest)
        store.put_cache_entry(_entry(T0 + timedelta(minutes=5), step="evaluate", execution_id="exec-eval"))
        store.put_cache_entry(_entry(T0 + timedelta(minutes=5), pipeline="other", execution_id="exec-other"))
        assert store.latest_cache_entry("train", "fit") == newest
        assert store.latest_cache_entry("train", "missing") is None

    def test_delete_cache_entries_by_pipeline_key_both_or_all(self, store: MetadataStore) -> None:
        store.put_cache_entry(_entry(T0, pipeline="a", cache_key=KEY))
        store.put_cache_entry(_entry(T0, pipeline="a", cache_key=OTHER_KEY))
        store.put_cache_entry(_entry(T0, pipeline="b", cache_key=KEY))
        store.put_cache_entry(_entry(T0, pipeline="c", cache_key=OTHER_KEY))
        assert store.delete_cache_entries(pipeline_name="a", cache_key=KEY) == 1
        assert store.delete_cache_entries(pipeline_name="missing") == 0
        assert store.delete_cache_entries(cache_key=OTHER_KEY) == 2
        assert [e.pipeline_name for e in store.find_cache_entries(KEY)] == ["b"]
        store.put_cache_entry(_entry(T0, pipeline="d"))
        assert store.delete_cache_entries() == 2
        assert store.find_cache_entries(KEY) == [] and store.find_cache_entries(OTHER_KEY) == []

    # -- content index ------------------------------------------------------------------------------------

    def test_remembered_content_is_looked_up_by_path(self, store: MetadataStore) -> None:
        entries = [
            ContentIndexEntry("/data/train.csv", 1024, "1718000000123456789", "blake3:" + "0" * 64),
            ContentIndexEntry("s3://bucket/big.parquet", 5 * 2**33, '"etag-1"', "e" * 64),
            ContentIndexEntry("/data/ünïcode file ✓.txt", 0, "1", "f" * 64),
        ]
        store.remember_content(iter(entries))
        found = store.lookup_content([e.path for e in entries] + ["/data/unknown.csv"])
        assert found == {e.path: e for e in entries}
        assert store.lookup_content([]) == {}
        assert store.lookup_content(p for p in ["/data/train.csv", "/data/train.csv"]) == {
            "/data/train.csv": entries[0]
        }

    def test_remember_content_replaces_and_last_of_a_call_wins(self, store: MetadataStore) -> None:
        store.remember_content([ContentIndexEntry("/d/a", 1, "v1", "d1"), ContentIndexEntry("/d/b", 1, "v1", "d1")])
        store.remember_content(
            [
                ContentIndexEntry("/d/a", 2, "v2", "d2"),
                ContentIndexEntry("/d/c", 5, "v1", "d5"),
                ContentIndexEntry("/d/c", 6, "v2", "d6"),
            ]
        )
        assert store.lookup_content(["/d/a", "/d/b", "/d/c"]) == {
            "/d/a": ContentIndexEntry("/d/a", 2, "v2", "d2"),
            "/d/b": ContentIndexEntry("/d/b", 1, "v1", "d1"),
            "/d/c": ContentIndexEntry("/d/c", 6, "v2", "d6"),
        }
        store.remember_content([])

    def test_content_index_handles_thousands_of_paths_and_long_ones(self, store: MetadataStore) -> None:
        entries = [
            ContentIndexEntry(f"/data/part-{index:05d}.csv", index, f"v{index}", f"d{index}") for index in range(1201)
        ]
        long_path = "/deep/" + "x" * 4000
        entries.append(ContentIndexEntry(long_path, 7, "v", "d"))
        store.remember_content(entries)
        wanted = [e.path for e in entries] + [f"/data/missing-{index}" for index in range(300)]
        found = store.lookup_content(wanted)
        assert found == {e.path: e for e in entries}
        changed = [ContentIndexEntry(e.path, e.size + 1, e.version, e.digest) for e in entries[:700]]
        store.remember_content(changed)
        again = store.lookup_content(e.path for e in entries)
        assert [again[e.path].size for e in entries[:700]] == [e.size + 1 for e in entries[:700]]
        assert again[entries[1000].path] == entries[1000]

    # -- metric points ------------------------------------------------------------------------------------

    def test_metric_points_come_back_by_step_attempt_and_seq(self, store: MetadataStore) -> None:
        _start_execution(store, [("train", "training"), ("evaluate", "processing")])
        points = [
            _point("train", 2, 1, value=0.3),
            _point("train", 1, 2, value=0.6),
            _point("train", 1, 1, name="acc", value=0.4),
            _point("evaluate", 1, 1, name="auc", value=0.9),
            _point("train", 1, 0, value=0.9),
            _point("train", 2, 0, value=0.5),
        ]
        store.add_metric_points(points)
        listed = store.list_metric_points("exec-0001")
        assert [(p.step_name, p.attempt, p.seq, p.name) for p in listed] == [
            ("evaluate", 1, 1, "auc"),
            ("train", 1, 0, "loss"),
            ("train", 1, 1, "acc"),
            ("train", 1, 2, "loss"),
            ("train", 2, 0, "loss"),
            ("train", 2, 1, "loss"),
        ]
        assert set(listed) == set(points)
        assert all(p.timestamp.utcoffset() == timedelta(0) for p in listed)
        losses = store.list_metric_points("exec-0001", "train", "loss")
        assert [(p.attempt, p.value) for p in losses] == [(1, 0.9), (1, 0.6), (2, 0.5), (2, 0.3)]
        assert [p.name for p in store.list_metric_points("exec-0001", name="auc")] == ["auc"]

    def test_non_finite_metric_values_survive(self, store: MetadataStore) -> None:
        _start_execution(store, [("train", "training")])
        store.add_metric_points(
            [
                _point("train", 1, 0, value=math.nan),
                _point("train", 1, 1, value=math.inf),
                _point("train", 1, 2, value=-0.0),
            ]
        )
        values = [p.value for p in store.list_metric_points("exec-0001", "train")]
        assert math.isnan(values[0]) and values[1:] == [math.inf, 0.0]

    def test_metric_points_need_an_existing_step_and_aware_timestamps(self, store: MetadataStore) -> None:
        _start_execution(store, [("train", "training")])
        with pytest.raises(StepNotFoundError, match="no step 'nope'"):
            store.add_metric_points([_point("train", 1, 0), _point("nope", 1, 0)])
        naive = MetricPoint("exec-0001", "train", 1, "loss", 0.1, datetime(2030, 1, 1), 0)
        with pytest.raises(ValueError, match="naive"):
            store.add_metric_points([naive])
        store.add_metric_points([])
        assert store.list_metric_points("exec-0001") == []
        assert store.list_metric_points("exec-0001", "train", "loss") == []
        with pytest.raises(ExecutionNotFoundError):
            store.list_metric_points("missing")
        with pytest.raises(StepNotFoundError):
            store.list_metric_points("exec-0001", "nope")
