"""WatchedFolder: the objects in a local folder or an object-store prefix, each with a version that changes on rewrite.

A local file's version is its mtime and size; an S3 object's is its ETag. Listing goes through fsspec with the
storage options the platform was configured with (FORGELINE_STORAGE_OPTIONS), and never serves a cached listing.

Files still being written are not objects yet. A writer that writes whole and renames into place writes first
to a hidden or temporary name (``.name.partial``, ``name.tmp``): as in a shell, a pattern matches a name that
starts with a dot only when the pattern does too, and names with an in-progress suffix (IN_PROGRESS_SUFFIXES)
count only for a pattern ending with that suffix. (fnmatch alone lets ``*`` match ``.a.json.partial``: a file
caught between its write and its rename would start an execution of its own.) A local file changed in the last
FRESH_SECONDS that does not parse yet is looked at again on the next poll.
"""

from __future__ import annotations

import fnmatch
import posixpath
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeline.errors import TriggerError
from forgeline.store.artifacts import is_local, url_to_fs

IN_PROGRESS_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".filepart", ".swp", "~")
"""Name endings writers and downloaders use for a file they have not finished."""

FRESH_SECONDS = 2.0
"""A local file changed this recently may still be being written: if it does not parse yet, look again later."""


@dataclass(frozen=True)
class WatchedObject:
    """One object in a watched folder: its key (path), version, URI, and whether it may still be being written."""

    key: str
    version: str
    uri: str
    fresh: bool = False


def normalise_watch(watch: str) -> str:
    """The stored form of a watch location: an absolute folder path, or a URL ending in '/'; TriggerError if bad."""
    if is_local(watch):
        folder = Path(watch.removeprefix("file://")).expanduser().resolve()
        if not folder.is_dir():
            raise TriggerError(f"--watch {watch!r}: no such folder; create it first or give s3://bucket/prefix/")
        return str(folder)
    protocol, _, rest = watch.partition("://")
    from fsspec.registry import known_implementations

    if protocol not in known_implementations or not rest.strip("/"):
        raise TriggerError(f"--watch {watch!r}: expected a local folder or a URL such as s3://bucket/prefix/")
    return watch.rstrip("/") + "/"


def matches(name: str, pattern: str) -> bool:
    """Whether a file name counts for a trigger's pattern: hidden and in-progress names only when it says so."""
    if name.startswith(".") and not pattern.startswith("."):
        return False
    if name.endswith(IN_PROGRESS_SUFFIXES) and not any(
            name.endswith(suffix) and pattern.endswith(suffix) for suffix in IN_PROGRESS_SUFFIXES):
        return False
    return fnmatch.fnmatchcase(name, pattern)


class WatchedFolder:
    """Lists and reads the objects under one watch location that match a glob pattern (not recursive)."""

    def __init__(self, watch: str, pattern: str,
                 options_by_protocol: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        """Open ``watch`` with the fsspec options for its protocol."""
        self.watch = watch
        self.pattern = pattern
        self.local = is_local(watch)
        protocol = "file" if self.local else watch.split("://", 1)[0]
        options = dict((options_by_protocol or {}).get(protocol, {}))
        try:
            self._fs, self._path = url_to_fs(watch, **options)
        except (ImportError, ValueError) as error:
            raise TriggerError(f"--watch {watch!r}: cannot open it: {error}") from None

    def list(self) -> list[WatchedObject]:
        """The matching objects now, by key."""
        self._fs.invalidate_cache(self._path)
        try:
            entries = self._fs.ls(self._path, detail=True)
        except FileNotFoundError:
            return []
        now = time.time()
        found = []
        for entry in entries:
            if entry.get("type") != "file":
                continue
            key = str(entry["name"])
            if not matches(posixpath.basename(key.rstrip("/")), self.pattern):
                continue
            found.append(self._object(key, entry, now))
        return sorted(found, key=lambda item: item.key)

    def read(self, item: WatchedObject) -> bytes:
        """The object's content."""
        data: bytes = self._fs.cat_file(item.key)
        return data

    def uri_of(self, key: str) -> str:
        """The URI of the object at ``key`` (a local path stays a path)."""
        return key if self.local else f"{self.watch.split('://', 1)[0]}://{key}"

    def check(self) -> None:
        """TriggerError when the location cannot be listed (bad credentials, no such bucket)."""
        try:
            self._fs.invalidate_cache(self._path)
            self._fs.ls(self._path, detail=False)
        except FileNotFoundError:
            bucket = self._path.split("/", 1)[0]
            if not self.local and not self._fs.exists(bucket):
                raise TriggerError(f"--watch {self.watch!r}: no bucket {bucket!r} there") from None
            return  # an empty prefix: objects may arrive later
        except Exception as error:  # fsspec backends raise their own kinds: say it in one line
            raise TriggerError(f"--watch {self.watch!r}: cannot list it: {type(error).__name__}: {error}") from None

    def _object(self, key: str, entry: Mapping[str, Any], now: float) -> WatchedObject:
        if self.local:
            mtime = float(entry.get("mtime") or 0.0)
            return WatchedObject(key, f"{mtime:.6f}:{entry.get('size')}", key, fresh=now - mtime < FRESH_SECONDS)
        etag = entry.get("ETag") or entry.get("etag") or entry.get("md5") or ""
        version = str(etag).strip('"') or f"{entry.get('LastModified')}:{entry.get('size')}"
        return WatchedObject(key, version, self.uri_of(key))
