"""Content-addressed code snapshots in the artifact store: what an execution runs, frozen when it is created.

A snapshot is a manifest (relative path -> content hash, size, executable bit) plus one blob per distinct
content, each stored once under its SHA-256 whatever file or snapshot it came from::

    <root>/snapshots/blobs/<2 hex>/<sha256>
    <root>/snapshots/manifests/<snapshot id>.json

The snapshot id is the SHA-256 of the manifest's canonical JSON, so the same code always gets the same id and
is stored once. Restoring checks every blob against its hash: a damaged snapshot is refused, never run.

Collection (``forgeline gc``) removes manifests no record names and blobs no remaining manifest uses, but only
those older than SNAPSHOT_GRACE_SECONDS: saving a snapshot that exists already rewrites its manifest once it is
REFRESH_SECONDS old (checking its blobs again), and a new snapshot checks, after writing its manifest, that every
blob it reused is still there, so a collection running meanwhile cannot leave a run with a damaged snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from forgeline.errors import ArtifactNotFoundError, ForgelineError, StoreError
from forgeline.store.artifacts import ArtifactStore

SNAPSHOTS_FOLDER = "snapshots"
MANIFEST_VERSION = 1
SNAPSHOT_GRACE_SECONDS = 24 * 3600
"""A manifest or blob written more recently than this is never collected, referenced or not."""
REFRESH_SECONDS = SNAPSHOT_GRACE_SECONDS / 4
"""Saving a snapshot whose manifest is older than this writes it again, so a snapshot in use never looks old."""
_CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class SnapshotFile:
    """One file of a snapshot: its content hash, size and whether it is executable."""

    sha256: str
    size: int
    executable: bool = False


def save_snapshot(artifacts: ArtifactStore, files: Mapping[str, str | Path],
                  digests: Mapping[str, str] | None = None) -> str:
    """Store these files (relative path in the snapshot -> local file) and return the snapshot's id.

    ``digests`` (local file -> SHA-256) saves reading files whose content is known. A snapshot stored before
    is not written again; blobs already stored (by any earlier snapshot) are not uploaded again.
    """
    manifest: dict[str, SnapshotFile] = {}
    sources: dict[str, Path] = {}
    for relative, local in files.items():
        name = _checked_relative_path(relative)
        if name in manifest:
            raise ValueError(f"snapshot path {relative!r} is given twice (as {name!r})")
        path = Path(local)
        try:
            info = path.stat()
            digest = (digests or {}).get(str(local))
            if digest is None:
                with path.open("rb") as handle:
                    digest = hashlib.file_digest(handle, "sha256").hexdigest()
        except FileNotFoundError as error:
            raise ArtifactNotFoundError(f"cannot snapshot {relative!r}: no file at {path}") from error
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"cannot snapshot {relative!r}: {path} is not a regular file")
        manifest[name] = SnapshotFile(digest, info.st_size, bool(info.st_mode & stat.S_IXUSR))
        sources[name] = path
    document = _manifest_json(manifest)
    snapshot_id = hashlib.sha256(document).hexdigest()
    manifest_uri = _manifest_uri(artifacts, snapshot_id)
    written = artifacts.modified(manifest_uri)
    if written is not None and time.time() - written < REFRESH_SECONDS:  # written after its blobs: all there
        return snapshot_id
    uploaded = set()
    for name, entry in manifest.items():
        blob = _blob_uri(artifacts, entry.sha256)
        if not artifacts.exists(blob):
            artifacts.put(sources[name], blob)
            uploaded.add(name)
    artifacts.write_bytes(manifest_uri, document)  # new, or refreshed so a collection sees it young
    for name, entry in manifest.items():  # a collection that listed manifests before ours may have taken these
        blob = _blob_uri(artifacts, entry.sha256)
        if name not in uploaded and not artifacts.exists(blob):
            artifacts.put(sources[name], blob)
    return snapshot_id


def list_snapshot_ids(artifacts: ArtifactStore) -> set[str]:
    """The id of every stored snapshot (one listing of the manifests' folder)."""
    names = (uri.rstrip("/").rsplit("/", 1)[-1] for uri in artifacts.children(artifacts.uri(SNAPSHOTS_FOLDER,
                                                                                            "manifests")))
    return {name.removesuffix(".json") for name in names
            if name.endswith(".json") and _is_digest(name.removesuffix(".json"))}


def list_blob_uris(artifacts: ArtifactStore) -> dict[str, str]:
    """Every stored blob: content hash -> URI."""
    return {uri.rsplit("/", 1)[-1]: uri for uri in artifacts.list(artifacts.uri(SNAPSHOTS_FOLDER, "blobs"))
            if _is_digest(uri.rsplit("/", 1)[-1])}


def manifest_uri(artifacts: ArtifactStore, snapshot_id: str) -> str:
    """Where a snapshot's manifest is stored."""
    return _manifest_uri(artifacts, snapshot_id)


def snapshot_size(artifacts: ArtifactStore, snapshot_id: str) -> tuple[int, int]:
    """How many files a snapshot holds and their total size in bytes."""
    files = read_snapshot(artifacts, snapshot_id)
    return len(files), sum(entry.size for entry in files.values())


def snapshot_summary(artifacts: ArtifactStore, snapshot_id: str | None) -> dict[str, Any] | None:
    """An execution's code as describe shows it: id, file count and bytes (an error instead when unreadable)."""
    if snapshot_id is None:
        return None
    try:
        files, size = snapshot_size(artifacts, snapshot_id)
    except ForgelineError as exc:
        return {"snapshot": snapshot_id, "error": str(exc)}
    return {"snapshot": snapshot_id, "files": files, "bytes": size}


def read_snapshot(artifacts: ArtifactStore, snapshot_id: str) -> dict[str, SnapshotFile]:
    """The files of a snapshot by relative path; ArtifactNotFoundError names an unknown snapshot id."""
    if not _is_digest(snapshot_id):
        raise ArtifactNotFoundError(f"{snapshot_id!r} is not a code snapshot id (64 lowercase hex characters)")
    try:
        document = artifacts.read_bytes(_manifest_uri(artifacts, snapshot_id))
    except ArtifactNotFoundError as error:
        raise ArtifactNotFoundError(
            f"no code snapshot {snapshot_id} in the artifact store {artifacts.root}") from error
    if hashlib.sha256(document).hexdigest() != snapshot_id:
        raise StoreError(f"code snapshot {snapshot_id} in {artifacts.root} is damaged (its manifest does not match "
                         "its id); rerun the pipeline to make a new one")
    parsed = json.loads(document)
    return {name: SnapshotFile(**entry) for name, entry in parsed["files"].items()}


def restore_snapshot(artifacts: ArtifactStore, snapshot_id: str, dest_dir: str | Path) -> list[Path]:
    """Write the snapshot's files under dest_dir (created if needed, files replaced) and return their paths."""
    destination = Path(dest_dir)
    restored = []
    for name, entry in read_snapshot(artifacts, snapshot_id).items():
        target = destination.joinpath(*PurePosixPath(name).parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle_number, staging_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        os.close(handle_number)
        staging = Path(staging_name)
        try:
            artifacts.get(_blob_uri(artifacts, entry.sha256), staging)
            with staging.open("rb") as handle:
                if hashlib.file_digest(handle, "sha256").hexdigest() != entry.sha256:
                    raise StoreError(f"code snapshot {snapshot_id} is damaged: the stored content of {name!r} "
                                     "does not match its hash; rerun the pipeline to make a new snapshot")
            os.chmod(staging, 0o755 if entry.executable else 0o644)
            os.replace(staging, target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        restored.append(target)
    return restored


def _is_digest(text: str) -> bool:
    return len(text) == 64 and all(char in "0123456789abcdef" for char in text)


def _checked_relative_path(relative: str) -> str:
    """The path in POSIX form; ValueError for an empty, absolute or escaping ('..') one."""
    name = PurePosixPath(relative.replace("\\", "/"))
    if not name.parts or name.is_absolute() or ".." in name.parts or str(name) == ".":
        raise ValueError(f"snapshot path {relative!r} must be relative, inside the snapshot, without '..'")
    return str(name)


def _manifest_json(manifest: Mapping[str, SnapshotFile]) -> bytes:
    files = {name: {"sha256": entry.sha256, "size": entry.size, "executable": entry.executable}
             for name, entry in sorted(manifest.items())}
    return json.dumps({"version": MANIFEST_VERSION, "files": files}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False).encode()


def _blob_uri(artifacts: ArtifactStore, digest: str) -> str:
    return artifacts.uri(SNAPSHOTS_FOLDER, "blobs", digest[:2], digest)


def _manifest_uri(artifacts: ArtifactStore, snapshot_id: str) -> str:
    return artifacts.uri(SNAPSHOTS_FOLDER, "manifests", f"{snapshot_id}.json")
