"""Code snapshots on a local artifact root and on an S3 server: saved once by content, restored byte for byte."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from forgeline.errors import ArtifactNotFoundError, StoreError
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.snapshots import read_snapshot, restore_snapshot, save_snapshot


@pytest.fixture(params=["local", "s3"])
def artifacts(request: Any, tmp_path: Path) -> ArtifactStore:
    """An empty artifact store, on a local folder or an S3 bucket."""
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "artifacts"))
    endpoint, bucket = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")
    return ArtifactStore(f"s3://{bucket}/root", client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True)


@pytest.fixture
def code(tmp_path: Path) -> dict[str, Path]:
    """A small project: a script, a package module, an executable and two files with the same content."""
    root = tmp_path / "project"
    files = {"train.py": b"print('train')\n", "pkg/features.py": "ÄÖÜ = 1\n".encode(),
             "bin/run.sh": b"#!/bin/sh\necho run\n", "data/a.txt": b"same\n", "data/b.txt": b"same\n",
             "empty.txt": b""}
    paths = {}
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        paths[name] = path
    paths["bin/run.sh"].chmod(0o755)
    return paths


def _blobs(artifacts: ArtifactStore) -> list[str]:
    return artifacts.list(artifacts.uri("snapshots", "blobs"))


def test_a_snapshot_restores_every_file_byte_for_byte(artifacts: ArtifactStore, code: dict[str, Path],
                                                      tmp_path: Path) -> None:
    snapshot_id = save_snapshot(artifacts, code)
    restored = restore_snapshot(artifacts, snapshot_id, tmp_path / "restored")
    assert sorted(path.relative_to(tmp_path / "restored").as_posix() for path in restored) == sorted(code)
    for name, original in code.items():
        copy = tmp_path / "restored" / name
        assert copy.read_bytes() == original.read_bytes()
        assert os.access(copy, os.X_OK) == (name == "bin/run.sh")
    listed = read_snapshot(artifacts, snapshot_id)
    assert listed["pkg/features.py"].size == len("ÄÖÜ = 1\n".encode())
    assert listed["bin/run.sh"].executable and not listed["train.py"].executable


def test_the_same_code_is_stored_once_whatever_its_local_paths(artifacts: ArtifactStore, code: dict[str, Path],
                                                               tmp_path: Path) -> None:
    first = save_snapshot(artifacts, code)
    assert len(_blobs(artifacts)) == len(code) - 1  # data/a.txt and data/b.txt share one blob
    elsewhere = {}
    for name, path in code.items():
        moved = tmp_path / "copy" / name
        moved.parent.mkdir(parents=True, exist_ok=True)
        moved.write_bytes(path.read_bytes())
        os.chmod(moved, os.stat(path).st_mode)
        elsewhere[name] = moved
    assert save_snapshot(artifacts, dict(reversed(elsewhere.items()))) == first
    code["train.py"].write_bytes(b"print('changed')\n")
    second = save_snapshot(artifacts, code)
    assert second != first
    assert len(_blobs(artifacts)) == len(code)  # only the changed file added a blob
    restore_snapshot(artifacts, first, tmp_path / "old")
    assert (tmp_path / "old" / "train.py").read_bytes() == b"print('train')\n"  # a snapshot never changes


def test_restoring_replaces_files_already_in_the_destination(artifacts: ArtifactStore, code: dict[str, Path],
                                                             tmp_path: Path) -> None:
    snapshot_id = save_snapshot(artifacts, code)
    destination = tmp_path / "work"
    (destination / "pkg").mkdir(parents=True)
    (destination / "pkg" / "features.py").write_text("stale")
    restore_snapshot(artifacts, snapshot_id, destination)
    assert (destination / "pkg" / "features.py").read_bytes() == code["pkg/features.py"].read_bytes()
    assert [p.name for p in (destination / "pkg").iterdir()] == ["features.py"]  # no staging file left behind


def test_unknown_and_malformed_snapshot_ids_are_refused_by_name(artifacts: ArtifactStore, tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match=f"no code snapshot {'0' * 64}"):
        restore_snapshot(artifacts, "0" * 64, tmp_path / "x")
    with pytest.raises(ArtifactNotFoundError, match="'../etc' is not a code snapshot id"):
        read_snapshot(artifacts, "../etc")


def test_a_damaged_blob_is_refused_not_restored(code: dict[str, Path], tmp_path: Path) -> None:
    artifacts = ArtifactStore(str(tmp_path / "artifacts"))
    snapshot_id = save_snapshot(artifacts, code)
    digest = read_snapshot(artifacts, snapshot_id)["train.py"].sha256
    Path(artifacts.uri("snapshots", "blobs", digest[:2], digest)).write_bytes(b"import os; os.system('boom')\n")
    with pytest.raises(StoreError, match="'train.py' does not match its hash"):
        restore_snapshot(artifacts, snapshot_id, tmp_path / "restored")
    assert not (tmp_path / "restored" / "train.py").exists()


@pytest.mark.parametrize("name", ["/etc/passwd", "../outside.py", "a/../../b.py", "", "."])
def test_paths_that_leave_the_snapshot_are_refused(name: str, code: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be relative"):
        save_snapshot(ArtifactStore(str(tmp_path / "artifacts")), {name: code["train.py"]})


def test_a_missing_local_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError, match=f"cannot snapshot 'gone.py': no file at {tmp_path / 'gone.py'}"):
        save_snapshot(ArtifactStore(str(tmp_path / "artifacts")), {"gone.py": tmp_path / "gone.py"})
