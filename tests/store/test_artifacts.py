"""ArtifactStore on a local folder and on fsspec's memory filesystem: same behaviour, atomic puts."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import fsspec
import pytest
from fsspec.core import url_to_fs

from forgeline.errors import ArtifactNotFoundError
from forgeline.store import artifacts
from forgeline.store.artifacts import ArtifactStore


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ArtifactStore]:
    """A store on an empty local folder or an empty memory:// root."""
    if request.param == "local":
        yield ArtifactStore(str(tmp_path / "artifacts"))
        return
    root = f"memory://forgeline-test-{uuid.uuid4().hex}"
    yield ArtifactStore(root)
    ArtifactStore(root).delete(root)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A local folder with nested files and an empty subfolder."""
    source = tmp_path / "source"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "empty").mkdir()
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.bin").write_bytes(b"\x00\x01")
    (source / "sub" / "deeper" / "c.json").write_text("{}")
    return source


FOLDER_FILES = ["a.txt", "sub/b.bin", "sub/deeper/c.json"]


def _leftovers(store: ArtifactStore) -> list[str]:
    """Staging names (files or folders, even empty ones) still present anywhere under the root."""
    fs, root = url_to_fs(store.root)
    names = fs.find(root, withdirs=True) if fs.exists(root) else []
    return [name for name in names if ".tmp-" in name or ".old-" in name]


def test_uri_is_a_plain_path_locally_and_keeps_the_scheme_otherwise(tmp_path: Path) -> None:
    local = ArtifactStore(str(tmp_path / "artifacts"))
    assert local.uri("exec", "step/out") == str(tmp_path / "artifacts" / "exec" / "step" / "out")
    assert ArtifactStore("memory://bucket/prefix/").uri("exec", "out") == "memory://bucket/prefix/exec/out"
    assert ArtifactStore(f"file://{tmp_path}").uri("x") == str(tmp_path / "x")
    with pytest.raises(ValueError, match=r"\.\."):
        local.uri("exec", "../../etc")


def test_put_and_get_a_file(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    uri = store.uri("exec-1", "train", "model.bin")
    assert store.put(source, uri) == uri
    assert store.exists(uri) and not store.is_dir(uri)
    store.get(uri, tmp_path / "back" / "model.bin")
    assert (tmp_path / "back" / "model.bin").read_bytes() == b"weights"
    assert store.read_bytes(uri) == b"weights"
    assert _leftovers(store) == []


def test_put_and_get_a_folder_recursively(store: ArtifactStore, folder: Path, tmp_path: Path) -> None:
    uri = store.uri("exec-1", "prepare", "train")
    store.put(str(folder), uri)
    assert store.is_dir(uri)
    assert store.list(uri) == [store.uri("exec-1", "prepare", "train", name) for name in FOLDER_FILES]
    store.get(uri, tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "back" / "sub" / "deeper" / "c.json").read_text() == "{}"
    assert (tmp_path / "back" / "empty").is_dir()
    assert _leftovers(store) == []


def test_put_replaces_an_existing_folder_or_file_completely(store: ArtifactStore, folder: Path, tmp_path: Path) -> None:
    uri = store.uri("out")
    store.put(folder, uri)
    smaller = tmp_path / "smaller"
    smaller.mkdir()
    (smaller / "only.txt").write_text("new")
    store.put(smaller, uri)
    assert [Path(found).name for found in store.list(uri)] == ["only.txt"]
    single = tmp_path / "single.txt"
    single.write_text("file now")
    store.put(single, uri)
    assert store.read_bytes(uri) == b"file now"
    assert _leftovers(store) == []


def test_a_failed_put_leaves_nothing_behind(
    store: ArtifactStore, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0

    def fail_on_second_file(*args: object, **kwargs: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("disk full")
        real_copy(*args, **kwargs)

    if store.root.startswith("memory://"):
        memory = fsspec.filesystem("memory")
        real_copy = memory.put_file
        monkeypatch.setattr(memory, "put_file", fail_on_second_file)
    else:
        real_copy = shutil.copyfile
        monkeypatch.setattr(shutil, "copyfile", fail_on_second_file)
    uri = store.uri("out")
    with pytest.raises(OSError, match="disk full"):
        store.put(folder, uri)
    assert not store.exists(uri)
    assert store.list(store.root) == []
    assert _leftovers(store) == []


def test_missing_sources_raise_artifact_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    missing = store.uri("nowhere")
    with pytest.raises(ArtifactNotFoundError, match=f"does not exist: {missing}"):
        store.get(missing, tmp_path / "x")
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        store.read_bytes(missing)
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        store.open(missing, "rb")
    with pytest.raises(ArtifactNotFoundError, match="local path does not exist"):
        store.put(tmp_path / "no-such-file", store.uri("x"))
    assert not store.exists(missing) and not store.is_dir(missing)
    assert store.list(missing) == []


def test_write_read_open_and_delete(store: ArtifactStore) -> None:
    uri = store.uri("exec-1", "report.json")
    store.write_bytes(uri, b'{"auc": 0.9}')
    assert store.read_bytes(uri) == b'{"auc": 0.9}'
    store.write_bytes(uri, b"{}")
    with store.open(uri, "rb") as handle:
        assert handle.read() == b"{}"
    other = store.uri("exec-1", "notes", "log.txt")
    with store.open(other, "wb") as handle:
        handle.write(b"line\n")
    assert store.read_bytes(other) == b"line\n"
    assert _leftovers(store) == []
    store.delete(store.uri("exec-1"))
    assert not store.exists(uri) and not store.exists(other)
    store.delete(store.uri("exec-1"))  # already gone: fine


def test_get_accepts_plain_local_paths_and_other_fsspec_urls(tmp_path: Path) -> None:
    store = ArtifactStore(str(tmp_path / "artifacts"))
    outside = tmp_path / "outside.txt"
    outside.write_text("local")
    store.get(str(outside), tmp_path / "a.txt")
    assert (tmp_path / "a.txt").read_text() == "local"
    remote = f"memory://forgeline-test-{uuid.uuid4().hex}/data.csv"
    with fsspec.open(remote, "wb") as handle:
        handle.write(b"x,y\n")
    store.get(remote, tmp_path / "data.csv")
    assert (tmp_path / "data.csv").read_bytes() == b"x,y\n"
    store.delete(remote)


def test_local_put_of_small_folders_copies_directly_without_fsspec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                    ) -> None:
    """A local root takes the direct copy (about a millisecond), never the generic fsspec upload."""
    import forgeline.store.artifacts as artifacts_module

    def generic_upload(*args: object, **kwargs: object) -> None:
        raise AssertionError("a local put fell back to the generic fsspec upload")

    monkeypatch.setattr(artifacts_module, "_upload", generic_upload)
    store = ArtifactStore(str(tmp_path / "artifacts"))
    source = tmp_path / "out"
    source.mkdir()
    for name in ("a.csv", "b.csv", "meta.json"):
        (source / name).write_text("1,2\n")
    for index in range(3):
        uri = store.put(source, store.uri("exec", f"step-{index}", "out"))
        assert sorted(Path(path).name for path in store.list(uri)) == ["a.csv", "b.csv", "meta.json"]


def test_object_store_roots_upload_straight_to_the_final_key(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pretend memory:// is an object store (no cheap rename), as s3/gcs/azure are.
    monkeypatch.setattr(artifacts, "_OBJECT_STORE_PROTOCOLS", frozenset({"memory"}))
    memory = fsspec.filesystem("memory")
    written: list[str] = []
    real_put_file, real_pipe_file = memory.put_file, memory.pipe_file

    def put_file(local: str, remote: str, **kwargs: object) -> None:
        written.append(remote)
        real_put_file(local, remote, **kwargs)

    def pipe_file(remote: str, data: bytes, **kwargs: object) -> None:
        written.append(remote)
        real_pipe_file(remote, data, **kwargs)

    monkeypatch.setattr(memory, "put_file", put_file)
    monkeypatch.setattr(memory, "pipe_file", pipe_file)
    root = f"memory://forgeline-test-{uuid.uuid4().hex}"
    store = ArtifactStore(root)
    store.put(folder, store.uri("out"))
    store.write_bytes(store.uri("report.json"), b"{}")
    assert written and not [name for name in written if ".tmp-" in name]
    store.get(store.uri("out"), tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "deeper" / "c.json").read_text() == "{}"
    store.delete(root)
