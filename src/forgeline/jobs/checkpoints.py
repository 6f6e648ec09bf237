"""Checkpoint sync: restore a job's checkpoint folder from its checkpoint URI, then upload what the job writes there.

The URI is a local path or any fsspec URL. A background thread polls the local folder (every second by
default) and uploads the files that are new or changed since their last upload, by size and modification time;
a last pass runs after the process ends, whatever the reason. Files deleted locally are kept at the URI, as in
SageMaker. A script should write each checkpoint to a temporary name and rename it into place, so that a
poll never sees half a file.
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from forgeline.errors import ArtifactNotFoundError, JobError

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore

POLL_SECONDS = 1.0

FileSignature = tuple[int, int]  # (size, mtime in ns)


class CheckpointSync:
    """Keeps one local checkpoint folder uploaded to one checkpoint URI while a job writes to it."""

    def __init__(
        self,
        artifacts: ArtifactStore,
        uri: str,
        local_dir: Path,
        *,
        poll_seconds: float = POLL_SECONDS,
        on_error: Callable[[str], None] = lambda message: None,
    ) -> None:
        self._artifacts = artifacts
        self._uri = uri.rstrip("/") or uri
        self._local_dir = local_dir
        self._poll_seconds = poll_seconds
        self._on_error = on_error
        self._uploaded: dict[str, FileSignature] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: str | None = None

    @property
    def local_dir(self) -> Path:
        """The folder the job writes its checkpoints to."""
        return self._local_dir

    def restore(self) -> int:
        """Empty the local folder and fill it with the checkpoints stored at the URI; returns the file count."""
        shutil.rmtree(self._local_dir, ignore_errors=True)
        self._local_dir.mkdir(parents=True)
        with self._lock:
            self._uploaded.clear()
            if not self._artifacts.exists(self._uri):
                return 0
            if not self._artifacts.is_dir(self._uri):
                raise JobError(f"checkpoint URI {self._uri} is a file; it must be a folder (or not exist yet)")
            self._artifacts.get(self._uri, self._local_dir)
            self._uploaded.update(self._scan())  # what came from the URI need not go back
            return len(self._uploaded)

    def start(self) -> None:
        """Upload changes in the background until :meth:`stop`."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._poll, name="forgeline-checkpoints", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background uploads, then upload whatever changed since the last one."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.upload_changed()

    def upload_changed(self) -> list[str]:
        """Upload new and changed files now; returns their paths relative to the folder."""
        with self._lock:
            changed = [(rel, sig) for rel, sig in self._scan().items() if self._uploaded.get(rel) != sig]
            done: list[str] = []
            for rel, signature in changed:
                try:
                    self._artifacts.put(self._local_dir / rel, f"{self._uri}/{rel}")
                except (FileNotFoundError, ArtifactNotFoundError):
                    continue  # removed (or renamed into place) since the scan; the next pass sees the result
                except Exception as exc:  # a storage error must not end the job: report it once and go on
                    message = f"could not upload checkpoint {rel} to {self._uri}: {type(exc).__name__}: {exc}"
                    if message != self._failing:
                        self._failing = message
                        self._on_error(message)
                    continue
                self._uploaded[rel] = signature
                done.append(rel)
            return done

    def _poll(self) -> None:
        while not self._stopping.wait(self._poll_seconds):
            self.upload_changed()

    def _scan(self) -> dict[str, FileSignature]:
        found: dict[str, FileSignature] = {}
        for folder, _, names in os.walk(self._local_dir):
            for name in names:
                path = os.path.join(folder, name)
                try:
                    stat = os.stat(path)
                except FileNotFoundError:
                    continue
                found[os.path.relpath(path, self._local_dir).replace(os.sep, "/")] = (stat.st_size, stat.st_mtime_ns)
        return found
