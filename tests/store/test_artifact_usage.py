"""ArtifactStore.usage and .children, which housekeeping measures and walks with: local folders and S3."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeline.store.artifacts import ArtifactStore


def _fill(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "model").mkdir(parents=True)
    (source / "model" / "weights.bin").write_bytes(b"w" * 1000)
    (source / "model" / "config.json").write_bytes(b"c" * 24)
    store.put(source / "model", store.uri("executions", "e1", "Train", "model"))
    store.write_bytes(store.uri("executions", "e1", "Train", "report.txt"), b"r" * 10)
    store.write_bytes(store.uri("executions", "e2", "Prepare", "data.csv"), b"d" * 5)


def _check(store: ArtifactStore) -> None:
    assert store.usage(store.uri("executions", "e1")) == 1034
    assert store.usage(store.uri("executions", "e1", "Train", "report.txt")) == 10
    assert store.usage(store.uri("executions", "nothing")) == 0
    assert store.children(store.uri("executions")) == [store.uri("executions", "e1"), store.uri("executions", "e2")]
    assert store.children(store.uri("executions", "e1", "Train")) == [
        store.uri("executions", "e1", "Train", "model"), store.uri("executions", "e1", "Train", "report.txt")]
    assert store.children(store.uri("nothing")) == []


def test_usage_and_children_of_a_local_root(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    _fill(store, tmp_path)
    (tmp_path / "artifacts" / "executions" / "e1" / "link").symlink_to("/etc/hostname")  # not followed

    assert store.usage(store.uri("executions", "e1")) == 1034 + len("/etc/hostname")  # the link, not its target
    (tmp_path / "artifacts" / "executions" / "e1" / "link").unlink()
    _check(store)


def test_usage_and_children_of_an_s3_root(tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    pytest.importorskip("s3fs")
    store = ArtifactStore(f"s3://{s3_bucket}/root", client_kwargs={"endpoint_url": s3_endpoint},
                          skip_instance_cache=True)
    _fill(store, tmp_path)

    _check(store)
