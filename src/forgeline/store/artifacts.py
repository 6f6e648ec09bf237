"""ArtifactStore: files and folders under one root, a local folder (fast path) or any fsspec URL.

Atomicity: local roots stage a `<uri>.tmp-<random>` sibling and rename it into place. Filesystems with a
real rename (memory, sftp, hdfs, ...) stage the same way and `mv`. Object stores (s3, gcs, azure) have no
rename — a "move" is a full copy — so they upload straight to the final key: each object appears whole,
but a folder's files appear one by one.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from forgeline.errors import ArtifactNotFoundError
from forgeline.store import local_files

if TYPE_CHECKING:
    from forgeline.config import Settings

_OBJECT_STORE_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss"})
_WRITE_MODES = frozenset("wax+")


@dataclass(frozen=True)
class _Location:
    """Where a URI lives: a local path (fs is None) or a path on an fsspec filesystem."""

    uri: str
    path: str
    fs: Any = None


class ArtifactStore:
    """Stores and fetches artifacts (files or folders) by URI under one root."""

    def __init__(self, root: str, *, options_by_protocol: Mapping[str, Mapping[str, Any]] | None = None,
                 **storage_options: Any) -> None:
        """Open the root; fsspec gets options_by_protocol[<a URL's protocol>] for any URL it opens, and
        storage_options (e.g. endpoint_url for an S3-compatible server) on top of them for the root's protocol."""
        self._by_protocol = {protocol: dict(options) for protocol, options in (options_by_protocol or {}).items()}
        self._options = {**self._by_protocol.get(_protocol(root), {}), **storage_options}
        if is_local(root):
            # the common case never imports fsspec: a job or worker stays cheap to start
            self._fs: Any = None
            self._root = os.path.abspath(root.removeprefix("file://"))
            self._root_path = self._root
            return
        fs, root_path = url_to_fs(root, **self._options)
        if _is_local_fs(fs):
            self._fs = None
            self._root = os.path.abspath(str(root_path))
            self._root_path = self._root
        else:
            self._fs = fs
            self._root = root.rstrip("/")
            self._root_path = str(root_path).rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactStore:
        """The store of settings.artifact_root, opening every remote URL with settings.storage_options."""
        return cls(settings.artifact_root, options_by_protocol=settings.storage_options)

    @property
    def options_by_protocol(self) -> dict[str, dict[str, Any]]:
        """The fsspec options per protocol this store opens URLs with (to hand to another process)."""
        return {protocol: dict(options) for protocol, options in self._by_protocol.items()}

    @property
    def root(self) -> str:
        """The root URI (an absolute path for a local root)."""
        return self._root

    def uri(self, *parts: str) -> str:
        """A URI under the root; parts may contain '/', never '..'."""
        segments: list[str] = []
        for part in parts:
            for segment in part.replace("\\", "/").split("/"):
                if segment == "..":
                    raise ValueError(f"artifact path {'/'.join(parts)!r} must not leave the root with '..'")
                if segment not in ("", "."):
                    segments.append(segment)
        if self._fs is None:
            return os.path.join(self._root, *segments)
        return "/".join([self._root, *segments])

    def put(self, local_path: str | Path, uri: str) -> str:
        """Store a local file or folder (recursively) at uri, atomically for readers; returns uri."""
        source = Path(local_path)
        if not source.exists():
            raise ArtifactNotFoundError(f"cannot store {uri}: local path does not exist: {source}")
        target = self._locate(uri)
        if target.fs is None:
            local_files.copy_into_place(source, target.path)
        elif _has_rename(target.fs):
            staging = local_files.temporary_sibling(target.path)
            try:
                _upload(source, target.fs, staging)
                _remove_remote(target.fs, target.path)
                target.fs.mv(staging, target.path, recursive=True)
            except BaseException:
                _remove_remote(target.fs, staging)
                raise
        else:
            _remove_remote(target.fs, target.path)
            _upload(source, target.fs, target.path)
        return uri

    def get(self, uri_or_path: str, local_path: str | Path) -> None:
        """Copy a file or folder from the store, a local path or any fsspec URL to local_path."""
        source = self._locate(uri_or_path)
        destination = Path(local_path)
        if source.fs is None:
            if not os.path.exists(source.path):
                raise ArtifactNotFoundError(f"cannot fetch to {destination}: artifact does not exist: {uri_or_path}")
            local_files.copy_out(source.path, destination)
            return
        fs = source.fs
        if not fs.exists(source.path):
            raise ArtifactNotFoundError(f"cannot fetch to {destination}: artifact does not exist: {uri_or_path}")
        if not fs.isdir(source.path):
            destination.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(source.path, str(destination))
            return
        destination.mkdir(parents=True, exist_ok=True)
        prefix = source.path.rstrip("/") + "/"
        for path, info in sorted(fs.find(source.path, withdirs=True, detail=True).items()):
            if not path.startswith(prefix):
                continue
            local = destination.joinpath(*path[len(prefix) :].rstrip("/").split("/"))
            if info["type"] == "directory" or _is_folder_marker(path):
                local.mkdir(parents=True, exist_ok=True)
            else:
                local.parent.mkdir(parents=True, exist_ok=True)
                fs.get_file(path, str(local))

    def exists(self, uri: str) -> bool:
        """True when a file or folder is stored at uri."""
        location = self._locate(uri)
        if location.fs is None:
            return os.path.exists(location.path)
        return bool(location.fs.exists(location.path))

    def is_dir(self, uri: str) -> bool:
        """True when uri is a folder."""
        location = self._locate(uri)
        if location.fs is None:
            return os.path.isdir(location.path)
        return bool(location.fs.isdir(location.path))

    def read_bytes(self, uri: str) -> bytes:
        """The content of the file at uri."""
        location = self._locate(uri)
        try:
            if location.fs is None:
                return Path(location.path).read_bytes()
            return bytes(location.fs.cat_file(location.path))
        except FileNotFoundError as error:
            raise ArtifactNotFoundError(f"cannot read: artifact does not exist: {uri}") from error

    def write_bytes(self, uri: str, data: bytes) -> None:
        """Write a file at uri atomically."""
        location = self._locate(uri)
        if location.fs is None:
            local_files.write_into_place(data, location.path)
        elif _has_rename(location.fs):
            staging = local_files.temporary_sibling(location.path)
            try:
                location.fs.pipe_file(staging, data)
                location.fs.mv(staging, location.path)
            except BaseException:
                _remove_remote(location.fs, staging)
                raise
        else:
            location.fs.pipe_file(location.path, data)

    def open(self, uri: str, mode: str = "rb") -> IO[Any]:
        """Open the file at uri (not atomic: prefer write_bytes or put for writing)."""
        location = self._locate(uri)
        try:
            if location.fs is None:
                if _WRITE_MODES.intersection(mode):
                    os.makedirs(os.path.dirname(location.path), exist_ok=True)
                return open(location.path, mode)
            handle: IO[Any] = location.fs.open(location.path, mode)
            return handle
        except FileNotFoundError as error:
            raise ArtifactNotFoundError(f"cannot open: artifact does not exist: {uri}") from error

    def delete(self, uri: str) -> None:
        """Delete the file or folder at uri; a missing one is fine."""
        location = self._locate(uri)
        if location.fs is None:
            local_files.remove(location.path)
        else:
            _remove_remote(location.fs, location.path)

    def modified(self, uri: str) -> float | None:
        """When the file at uri was last written, in POSIX seconds; None when there is none, infinity when its
        filesystem cannot tell (so it never looks old)."""
        location = self._locate(uri)
        try:
            if location.fs is None:
                return os.stat(location.path).st_mtime
            return float(location.fs.modified(location.path).timestamp())
        except FileNotFoundError:
            return None
        except (NotImplementedError, AttributeError):
            return None if not location.fs.exists(location.path) else float("inf")

    def list(self, uri: str) -> list[str]:
        """URIs of every file under the folder at uri (recursive, sorted); [] when there is none."""
        location = self._locate(uri)
        if location.fs is None:
            return local_files.list_files(location.path)
        base_path = location.path.rstrip("/")
        base_uri = location.uri.rstrip("/")
        return sorted(
            base_uri + path[len(base_path) :]
            for path in location.fs.find(location.path)
            if (path == base_path or path.startswith(base_path + "/")) and not _is_folder_marker(path)
        )

    def usage(self, uri: str) -> int:
        """Bytes of the file at uri, or of every file under the folder at uri; 0 when there is none."""
        location = self._locate(uri)
        if location.fs is None:
            return local_files.disk_usage(location.path)
        if not location.fs.exists(location.path):
            return 0
        return int(location.fs.du(location.path, total=True))

    def children(self, uri: str) -> builtins.list[str]:
        """URIs of the entries (files and folders) directly inside the folder at uri, sorted; [] when none."""
        location = self._locate(uri)
        base_uri = location.uri.rstrip("/")
        if location.fs is None:
            try:
                return sorted(os.path.join(base_uri, name) for name in os.listdir(location.path))
            except (FileNotFoundError, NotADirectoryError):
                return []
        base_path = location.path.rstrip("/")
        try:
            paths = location.fs.ls(base_path, detail=False)
        except FileNotFoundError:
            return []
        names = {str(path).rstrip("/").rsplit("/", 1)[-1] for path in paths if str(path).rstrip("/") != base_path}
        return sorted(f"{base_uri}/{name}" for name in names if name)

    def _locate(self, uri: str) -> _Location:
        if self._fs is not None and (uri == self._root or uri.startswith(self._root + "/")):
            return _fresh(_Location(uri=uri, path=self._root_path + uri[len(self._root) :], fs=self._fs))
        if is_local(uri):
            return _Location(uri=uri, path=os.path.abspath(uri.removeprefix("file://")))
        protocol = _protocol(uri)
        same_scheme = self._fs is not None and protocol == _protocol(self._root)
        fs, path = url_to_fs(uri, **(self._options if same_scheme else self._by_protocol.get(protocol, {})))
        if _is_local_fs(fs):
            return _Location(uri=uri, path=os.path.abspath(path))
        return _fresh(_Location(uri=uri, path=str(path), fs=fs))


def _fresh(location: _Location) -> _Location:
    """The location, with its filesystem's listing cache dropped.

    fsspec filesystems (s3fs, gcsfs, ...) cache folder listings per process and share one instance per set of
    options; other processes (jobs, workers, the CLI) write under the same root, so an earlier listing would
    make exists/is_dir deny files written since.
    """
    location.fs.invalidate_cache()
    return location


def _protocol(url: str) -> str:
    """The protocol of a URL (``s3`` for ``s3://bucket/key``); ``file`` for a local path."""
    return url.split("://", 1)[0] if "://" in url else "file"


def is_local(location: str) -> bool:
    """Whether a location is a plain local path (or a file:// URL)."""
    return "://" not in location or location.startswith("file://")


def url_to_fs(url: str, **options: Any) -> tuple[Any, str]:
    """fsspec's filesystem and path for a URL, importing fsspec only when a remote location is used."""
    from fsspec.core import url_to_fs as resolve

    fs, path = resolve(url, **options)
    return fs, str(path)


def _is_local_fs(fs: Any) -> bool:
    from fsspec.implementations.local import LocalFileSystem

    return isinstance(fs, LocalFileSystem)


def _has_rename(fs: Any) -> bool:
    protocols = {fs.protocol} if isinstance(fs.protocol, str) else set(fs.protocol)
    return not protocols & _OBJECT_STORE_PROTOCOLS


def _upload(source: Path, fs: Any, target: str) -> None:
    if not source.is_dir():
        fs.put_file(str(source), target)
        return
    # Object stores have no folders (and makedirs may cost a request or even create a bucket): skip them.
    with_folders = _has_rename(fs)
    if with_folders:
        fs.makedirs(target, exist_ok=True)
    for folder, subfolders, names in os.walk(source):
        relative = os.path.relpath(folder, source)
        base = target if relative == "." else f"{target}/{relative.replace(os.sep, '/')}"
        for subfolder in subfolders if with_folders else ():
            fs.makedirs(f"{base}/{subfolder}", exist_ok=True)
        if not with_folders and not subfolders and not names:
            # An object store keeps no empty folders: a zero-byte "<folder>/" key (what S3 consoles create for a
            # folder) makes an empty output exist, and get() turns it back into an empty folder.
            fs.pipe_file(f"{base}/", b"")
        for name in names:
            fs.put_file(os.path.join(folder, name), f"{base}/{name}")


def _is_folder_marker(path: str) -> bool:
    """Whether an object store key is a folder marker ("<folder>/", zero bytes) rather than a file."""
    return path.endswith("/")


def _remove_remote(fs: Any, path: str) -> None:
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass
