"""Content fingerprints of data (files, folders, artifact URIs); a stat-keyed index spares re-reading unchanged data."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import blake3

from forgeline.errors import ArtifactNotFoundError
from forgeline.store.artifacts import url_to_fs
from forgeline.store.metadata.records import ContentIndexEntry

LARGE_FILE_BYTES = 8 * 1024 * 1024
RACY_NS = 2 * 10**9
"""A file modified this recently may change again within its mtime tick (coarse clocks, 2 s on FAT) while
keeping its size: its digest is used but not remembered, as git does with racily clean index entries."""


class ContentIndex(Protocol):
    """A persistent map from a file's (path, size, version) to its content digest (the metadata store is one)."""

    def lookup_content(self, paths: Iterable[str]) -> dict[str, ContentIndexEntry]:
        """Known entries for these paths."""
        ...

    def remember_content(self, entries: Iterable[ContentIndexEntry]) -> None:
        """Store (or replace) entries."""
        ...


class MemoryContentIndex:
    """A ContentIndex that lives as long as the process (used when no store is at hand)."""

    def __init__(self) -> None:
        self.entries: dict[str, ContentIndexEntry] = {}

    def lookup_content(self, paths: Iterable[str]) -> dict[str, ContentIndexEntry]:
        """Known entries for these paths."""
        return {p: self.entries[p] for p in paths if p in self.entries}

    def remember_content(self, entries: Iterable[ContentIndexEntry]) -> None:
        """Store (or replace) entries."""
        for entry in entries:
            self.entries[entry.path] = entry


def hash_bytes(data: bytes) -> str:
    """BLAKE3 hex digest of bytes."""
    return blake3.blake3(data).hexdigest()


def hash_local_file(path: str) -> str:
    """BLAKE3 of a local file; large files are memory-mapped and hashed on every core."""
    if os.path.getsize(path) >= LARGE_FILE_BYTES:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(path)
        return hasher.hexdigest()
    with open(path, "rb") as handle:
        return blake3.blake3(handle.read()).hexdigest()


def combine(parts: Mapping[str, str]) -> str:
    """One digest for named digests (a folder's files, a cache key's components), order-independent."""
    hasher = blake3.blake3()
    for name in sorted(parts):
        hasher.update(name.encode() + b"\0" + parts[name].encode() + b"\n")
    return hasher.hexdigest()


class Fingerprinter:
    """Fingerprints local paths and fsspec URLs, consulting and filling a ContentIndex."""

    def __init__(self, index: ContentIndex | None = None,
                 options_by_protocol: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.index = index or MemoryContentIndex()
        self.options_by_protocol = dict(options_by_protocol or {})  # FORGELINE_STORAGE_OPTIONS: endpoint, keys

    def fingerprint(self, location: str) -> str:
        """Content digest of a file or folder; folders hash their relative paths and file digests."""
        if "://" in location and not location.startswith("file://"):
            return self._remote(location)
        path = location.removeprefix("file://")
        if os.path.isfile(path):
            return self._local_files({"": path})[""]
        if os.path.isdir(path):
            files = {}
            for root, _, names in os.walk(path):
                for name in names:
                    full = os.path.join(root, name)
                    files[os.path.relpath(full, path).replace(os.sep, "/")] = full
            return "dir:" + combine(self._local_files(files))
        if os.path.islink(path) and not os.path.exists(path):
            raise ArtifactNotFoundError(f"cannot fingerprint {location}: it is a broken symlink or a symlink loop")
        raise ArtifactNotFoundError(f"cannot fingerprint {location}: it does not exist")

    def _local_files(self, files: Mapping[str, str]) -> dict[str, str]:
        started_ns = time.time_ns()
        try:
            stats = {rel: os.stat(full) for rel, full in files.items()}
        except OSError as exc:  # a symlink loop or a dangling link inside a folder
            raise ArtifactNotFoundError(f"cannot fingerprint {exc.filename}: {exc.strerror}") from None
        known = self.index.lookup_content(os.path.abspath(full) for full in files.values())
        digests: dict[str, str] = {}
        fresh: list[ContentIndexEntry] = []
        for rel, full in files.items():
            key = os.path.abspath(full)
            stat = stats[rel]
            entry = known.get(key)
            if entry and entry.size == stat.st_size and entry.version == str(stat.st_mtime_ns):
                digests[rel] = entry.digest
                continue
            digest = hash_local_file(full)
            digests[rel] = digest
            if started_ns - stat.st_mtime_ns >= RACY_NS:
                fresh.append(ContentIndexEntry(key, stat.st_size, str(stat.st_mtime_ns), digest))
        if fresh:
            self.index.remember_content(fresh)
        return digests

    def _remote(self, url: str) -> str:
        fs, root = url_to_fs(url, **self.options_by_protocol.get(url.split("://", 1)[0], {}))
        if not fs.exists(root):
            raise ArtifactNotFoundError(f"cannot fingerprint {url}: it does not exist")
        infos: dict[str, Any] = (
            {"": fs.info(root)} if fs.isfile(root)
            else {p[len(root.rstrip("/")) + 1:]: i for p, i in fs.find(root, detail=True).items()}
        )
        keys = {rel: f"{fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]}://{info['name']}"
                for rel, info in infos.items()}
        known = self.index.lookup_content(keys.values())
        digests: dict[str, str] = {}
        fresh: list[ContentIndexEntry] = []
        for rel, info in infos.items():
            version = str(info.get("ETag") or info.get("etag") or info.get("checksum") or info.get("mtime")
                          or info.get("LastModified") or info.get("created") or "")
            entry = known.get(keys[rel])
            if version and entry and entry.size == info.get("size") and entry.version == version:
                digests[rel] = entry.digest
                continue
            digest = hash_bytes(fs.cat_file(info["name"]))
            digests[rel] = digest
            if version:
                fresh.append(ContentIndexEntry(keys[rel], int(info.get("size") or 0), version, digest))
        if fresh:
            self.index.remember_content(fresh)
        return digests[""] if list(digests) == [""] else "dir:" + combine(digests)
