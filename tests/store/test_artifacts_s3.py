"""ArtifactStore on s3:// against a real S3 HTTP API (moto's server on loopback), through s3fs.

Two ways to reach an S3-compatible server: storage options given to the store (``client_kwargs``), and the
standard AWS environment (``AWS_ENDPOINT_URL``), which is all a user of ``FORGELINE_ARTIFACT_ROOT`` can set.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from forgeline.errors import ArtifactNotFoundError
from forgeline.store.artifacts import ArtifactStore

FOLDER_FILES = ["a.txt", "sub/b.bin", "sub/deeper/c.json"]


@pytest.fixture
def store(s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> ArtifactStore:
    """A store on ``s3://<fresh bucket>/prefix``, its endpoint given as a storage option."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # skip_instance_cache: a fresh client, so no listing cached by another test can answer for this one
    return ArtifactStore(f"s3://{s3_bucket}/prefix", client_kwargs={"endpoint_url": s3_endpoint},
                         skip_instance_cache=True)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A local folder with nested files."""
    source = tmp_path / "source"
    (source / "sub" / "deeper").mkdir(parents=True)
    (source / "a.txt").write_text("a")
    (source / "sub" / "b.bin").write_bytes(b"\x00\x01")
    (source / "sub" / "deeper" / "c.json").write_text("{}")
    return source


def _keys(endpoint: str, bucket: str) -> list[str]:
    """Every object key in the bucket, read with a separate client (boto3), not through the store."""
    import boto3

    listed = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def test_uris_keep_the_scheme_bucket_and_prefix(store: ArtifactStore, s3_bucket: str) -> None:
    assert store.root == f"s3://{s3_bucket}/prefix"
    assert store.uri("exec-1", "Fit/model") == f"s3://{s3_bucket}/prefix/exec-1/Fit/model"


def test_put_and_get_a_file(store: ArtifactStore, tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"weights")
    uri = store.uri("exec-1", "train", "model.bin")
    assert store.put(source, uri) == uri
    assert _keys(s3_endpoint, s3_bucket) == ["prefix/exec-1/train/model.bin"]  # straight to the key, no staging
    assert store.exists(uri) and not store.is_dir(uri)
    store.get(uri, tmp_path / "back" / "model.bin")
    assert (tmp_path / "back" / "model.bin").read_bytes() == b"weights"
    assert store.read_bytes(uri) == b"weights"


def test_put_and_get_a_folder_recursively(
    store: ArtifactStore, folder: Path, tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    uri = store.uri("exec-1", "prepare", "train")
    store.put(str(folder), uri)
    assert _keys(s3_endpoint, s3_bucket) == [f"prefix/exec-1/prepare/train/{name}" for name in FOLDER_FILES]
    assert store.exists(uri) and store.is_dir(uri)
    assert store.list(uri) == [store.uri("exec-1", "prepare", "train", name) for name in FOLDER_FILES]
    assert store.list(store.root) == store.list(uri)
    store.get(uri, tmp_path / "back")
    assert (tmp_path / "back" / "a.txt").read_text() == "a"
    assert (tmp_path / "back" / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "back" / "sub" / "deeper" / "c.json").read_text() == "{}"


def test_put_replaces_an_existing_folder_completely(
    store: ArtifactStore, folder: Path, tmp_path: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    uri = store.uri("out")
    store.put(folder, uri)
    smaller = tmp_path / "smaller"
    smaller.mkdir()
    (smaller / "only.txt").write_text("new")
    store.put(smaller, uri)
    assert store.list(uri) == [store.uri("out", "only.txt")]
    assert _keys(s3_endpoint, s3_bucket) == ["prefix/out/only.txt"]


def test_write_read_open_list_and_delete(store: ArtifactStore) -> None:
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
    assert store.list(store.uri("exec-1")) == [other, uri]
    assert store.list(uri) == [uri]  # a file lists as itself
    store.delete(store.uri("exec-1"))
    assert not store.exists(uri) and not store.exists(other)
    assert store.list(store.uri("exec-1")) == []
    store.delete(store.uri("exec-1"))  # already gone: fine


def test_missing_artifacts_raise_artifact_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    missing = store.uri("nowhere", "model.bin")
    with pytest.raises(ArtifactNotFoundError, match=f"does not exist: {missing}"):
        store.get(missing, tmp_path / "x")
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        store.read_bytes(missing)
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        store.open(missing, "rb")
    with pytest.raises(ArtifactNotFoundError, match="local path does not exist"):
        store.put(tmp_path / "no-such-file", store.uri("x"))
    assert not store.exists(missing) and not store.is_dir(missing)
    assert store.list(store.uri("nowhere")) == []


def test_a_missing_bucket_is_not_found_too(s3_endpoint: str, tmp_path: Path) -> None:
    store = ArtifactStore(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/prefix",
                          client_kwargs={"endpoint_url": s3_endpoint}, skip_instance_cache=True)
    assert not store.exists(store.uri("x"))
    with pytest.raises(ArtifactNotFoundError):
        store.read_bytes(store.uri("x"))
    with pytest.raises(ArtifactNotFoundError):
        store.get(store.uri("x"), tmp_path / "x")


def test_get_fetches_an_s3_url_outside_the_root_with_the_roots_settings(
    store: ArtifactStore, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).put_object(Bucket=s3_bucket, Key="shared/data.csv", Body=b"x,y\n")
    store.get(f"s3://{s3_bucket}/shared/data.csv", tmp_path / "data.csv")
    assert (tmp_path / "data.csv").read_bytes() == b"x,y\n"
    assert store.exists(f"s3://{s3_bucket}/shared")


def test_what_another_process_writes_is_seen_by_a_long_lived_store(
    store: ArtifactStore, folder: Path, s3_endpoint: str, s3_bucket: str
) -> None:
    """An orchestrator, a warm worker or a notebook keeps one store while other processes write under its root.

    s3fs caches folder listings per process; the store must never answer from one taken before another
    process wrote.
    """
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    store.put(folder, store.uri("exec-1", "Prepare", "train"))
    assert store.is_dir(store.uri("exec-1", "Prepare", "train"))
    assert len(store.list(store.root)) == len(FOLDER_FILES)  # s3fs now holds listings of every folder
    assert not store.exists(store.uri("exec-1", "Fit"))
    client.put_object(Bucket=s3_bucket, Key="prefix/exec-1/Prepare/train/sub/late.txt", Body=b"late")
    client.put_object(Bucket=s3_bucket, Key="prefix/exec-1/Fit/model/model.joblib", Body=b"model")
    assert store.exists(store.uri("exec-1", "Prepare", "train", "sub", "late.txt"))
    assert not store.is_dir(store.uri("exec-1", "Prepare", "train", "sub", "late.txt"))
    assert store.exists(store.uri("exec-1", "Fit")) and store.is_dir(store.uri("exec-1", "Fit", "model"))
    assert store.list(store.uri("exec-1", "Fit")) == [store.uri("exec-1", "Fit", "model", "model.joblib")]
    assert store.read_bytes(store.uri("exec-1", "Fit", "model", "model.joblib")) == b"model"
    client.delete_object(Bucket=s3_bucket, Key="prefix/exec-1/Fit/model/model.joblib")
    assert not store.exists(store.uri("exec-1", "Fit", "model", "model.joblib"))
    assert not store.exists(store.uri("exec-1", "Fit"))


def test_an_empty_folder_is_stored_and_fetched_empty(store: ArtifactStore, tmp_path: Path) -> None:
    """A step output its script left empty is still an output: it exists and stages as an empty folder."""
    empty = tmp_path / "empty"
    empty.mkdir()
    uri = store.uri("exec-1", "Prepare", "unused")
    store.put(empty, uri)
    assert store.exists(uri) and store.is_dir(uri)
    assert store.list(uri) == []
    store.get(uri, tmp_path / "back")
    assert (tmp_path / "back").is_dir() and list((tmp_path / "back").iterdir()) == []


def test_empty_subfolders_round_trip(store: ArtifactStore, folder: Path, tmp_path: Path) -> None:
    (folder / "empty" / "deeper").mkdir(parents=True)
    uri = store.uri("out")
    store.put(folder, uri)
    assert store.list(uri) == [store.uri("out", name) for name in FOLDER_FILES]  # markers are no files
    store.get(uri, tmp_path / "back")
    assert (tmp_path / "back" / "empty" / "deeper").is_dir()
    assert (tmp_path / "back" / "sub" / "deeper" / "c.json").read_text() == "{}"


def test_a_folder_made_in_an_s3_console_is_fetched_as_a_folder(
    store: ArtifactStore, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    """Consoles and other tools create "folder/" marker keys next to the files; they are no files."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    for key, body in [("data/", b""), ("data/train.csv", b"a,b\n"), ("data/extra/", b"")]:
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)
    uri = f"s3://{s3_bucket}/data"
    assert store.exists(uri) and store.is_dir(uri)
    assert store.list(uri) == [f"{uri}/train.csv"]
    store.get(uri, tmp_path / "input")
    assert (tmp_path / "input" / "train.csv").read_bytes() == b"a,b\n"
    assert (tmp_path / "input" / "extra").is_dir()


def test_the_endpoint_can_come_from_the_environment_alone(
    s3_endpoint: str, s3_bucket: str, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What FORGELINE_ARTIFACT_ROOT=s3://... users have: no storage options, AWS_ENDPOINT_URL (botocore's)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    store = ArtifactStore(f"s3://{s3_bucket}/prefix", skip_instance_cache=True)
    uri = store.uri("exec-1", "Prepare", "train")
    store.put(folder, uri)
    assert _keys(s3_endpoint, s3_bucket) == [f"prefix/exec-1/Prepare/train/{name}" for name in FOLDER_FILES]
    assert store.exists(uri) and store.is_dir(uri)
    assert store.list(uri) == [f"{uri}/{name}" for name in FOLDER_FILES]
    store.get(uri, tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "deeper" / "c.json").read_text() == "{}"
    store.write_bytes(store.uri("report.json"), b"{}")
    assert store.read_bytes(store.uri("report.json")) == b"{}"
    with pytest.raises(ArtifactNotFoundError, match="does not exist"):
        store.read_bytes(store.uri("missing.json"))


def test_a_local_store_opens_s3_urls_with_the_options_of_their_protocol(
    tmp_path: Path, s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FORGELINE_STORAGE_OPTIONS' shape: options keyed by protocol reach any s3:// URL, not just an s3 root."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    options = {"s3": {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing", "skip_instance_cache": True}}
    store = ArtifactStore(str(tmp_path / "artifacts"), options_by_protocol=options)
    uri = f"s3://{s3_bucket}/inputs/data.csv"
    store.write_bytes(uri, b"a,1\n")
    store.get(uri, tmp_path / "staged" / "data.csv")
    assert (tmp_path / "staged" / "data.csv").read_bytes() == b"a,1\n"
    assert store.options_by_protocol == options
