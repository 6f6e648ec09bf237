"""Housekeeping: delete executions, collect old ones and leftovers, and free their folders and artifacts.

Deleting an execution removes its record (steps, attempts, metrics), its job folder and logs under
FORGELINE_HOME, its cache entries, and the artifacts forgeline wrote for it (``<artifact root>/executions/<id>``).
Never removed: an artifact that a kept execution's step, a live cache entry or a registered model package uses.
A cache entry is live while the execution that made it is kept, or while a kept execution reused it (a cache
hit), so a result in daily use survives its first execution. Locations a user chose (an output
``destination``) belong to the user and are never touched.

Listings are taken before the metadata is read: anything an execution starting meanwhile creates is not in
them, so it cannot be mistaken for a leftover.

Code snapshots (forgeline.store.snapshots) no execution, pipeline version, schedule or trigger names are
collected with the blobs no remaining snapshot uses, once older than their grace period; so are this machine's
checkouts (``<home>/code/<snapshot id>``) of snapshots no unfinished execution runs.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from forgeline.config import Settings
from forgeline.engine.liveness import check_orchestrator
from forgeline.engine.lost import claim_lost, end_lost_execution
from forgeline.engine.ownership import fenced, owner_name
from forgeline.engine.registration import PACKAGES_FOLDER, package_folder_execution
from forgeline.errors import ArtifactNotFoundError, ExecutionNotFoundError, ForgelineError
from forgeline.executors.base import Executor
from forgeline.jobs.placement import JobRoots
from forgeline.store import local_files
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.housekeeping_store import ArtifactReference, ReferenceHolder
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionRecord, ExecutionStatus
from forgeline.store.snapshots import (
    SNAPSHOT_GRACE_SECONDS,
    SNAPSHOTS_FOLDER,
    list_blob_uris,
    list_snapshot_ids,
    manifest_uri,
    read_snapshot,
)

EXECUTIONS_FOLDER = "executions"


@dataclass(frozen=True)
class Removal:
    """One thing removed (or, in a dry run, to be removed) and the bytes it held."""

    kind: str  # execution, artifacts, job folder, logs, cache entry, leftover, code snapshot, code blob, checkout
    location: str
    size: int = 0


@dataclass
class HousekeepingReport:
    """What a delete or a collection removed or would remove, and what it kept on purpose and why."""

    dry_run: bool
    removed: list[Removal] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (location, who still uses it)

    @property
    def bytes_freed(self) -> int:
        """Bytes of every removed folder, file and artifact."""
        return sum(item.size for item in self.removed)

    @property
    def executions(self) -> list[str]:
        """Ids of the removed executions."""
        return [item.location for item in self.removed if item.kind == "execution"]


@dataclass(frozen=True)
class _Listing:
    """The execution folders and package folders that existed before the metadata was read."""

    artifact_folders: list[str]
    job_folders: list[Path]
    log_folders: list[Path]
    package_folders: list[str]
    snapshots: dict[str, float | None]  # snapshot id -> when its manifest was written
    blobs: dict[str, str]  # content hash -> URI
    checkouts: list[Path]


class Housekeeper:
    """Deletes executions and collects garbage in one store; ``dry_run`` only reports."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore, settings: Settings, *, executor: Executor,
                 dry_run: bool = False) -> None:
        """``executor`` ends the jobs a lost orchestrator left running when its execution is deleted."""
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.executor = executor
        self.report = HousekeepingReport(dry_run)
        self._dead: set[tuple[str | None, str]] = set()  # (execution, cache key) of expired cache entries

    def delete_execution(self, execution_id: str) -> HousekeepingReport:
        """Remove one finished (or orchestrator-lost) execution; refuse one that is running."""
        record = self.store.get_execution(execution_id)
        if not record.status.is_terminal:
            liveness = check_orchestrator(record, self.settings, self.store)
            if not liveness.lost:
                raise ForgelineError(
                    f"execution {record.id} is running ({record.status.value}); stop it first "
                    f"(forgeline executions stop {record.id}), then delete it"
                )
            if not self.report.dry_run:
                self._settle_lost(record)
        self._remove([record], self.store.list_artifact_references())
        return self.report

    def collect(self, older_than: timedelta, now: datetime | None = None) -> HousekeepingReport:
        """Remove executions that ended before ``now - older_than``, then leftovers no execution owns."""
        if older_than < timedelta(0):
            raise ForgelineError("--older-than must not be negative")
        listing = self._list()
        references = self.store.list_artifact_references()
        cutoff = (now or datetime.now(UTC)) - older_than
        old = self.store.list_finished_executions(cutoff)
        self._remove(old, references)
        gone = {record.id for record in old}
        known = self.store.list_execution_ids() - gone
        if not self.report.dry_run:
            references = self.store.list_artifact_references()
        kept = [r for r in references if not (r.holder == ReferenceHolder.STEP_RUN and r.execution_id in gone)]
        self._expire_cache_entries({r.execution_id for r in kept if r.holder == ReferenceHolder.CACHE_ENTRY
                                    and r.execution_id not in known and r.execution_id not in gone}, kept)
        users = self._users(kept)
        for uri in listing.artifact_folders:
            if _name(uri) not in known and _name(uri) not in gone:
                self._prune_artifacts(uri, users, kind="leftover")
        for path in [*listing.job_folders, *listing.log_folders]:
            if path.name not in known and path.name not in gone:
                self._remove_local(path, "leftover")
        self._remove_package_leftovers(listing.package_folders, users)
        self._collect_snapshots(listing, gone, (now or datetime.now(UTC)).timestamp() - SNAPSHOT_GRACE_SECONDS)
        return self.report

    def _list(self) -> _Listing:
        packages = [folder for group in self.artifacts.children(self.artifacts.uri(PACKAGES_FOLDER))
                    for folder in self.artifacts.children(group)]
        return _Listing(self.artifacts.children(self.artifacts.uri(EXECUTIONS_FOLDER)),
                        _subfolders(self.settings.jobs_dir), _subfolders(self.settings.logs_dir), packages,
                        {snapshot_id: self.artifacts.modified(manifest_uri(self.artifacts, snapshot_id))
                         for snapshot_id in list_snapshot_ids(self.artifacts)},
                        list_blob_uris(self.artifacts), _subfolders(JobRoots.of(self.settings).code_dir))

    def _collect_snapshots(self, listing: _Listing, gone: set[str], old: float) -> None:
        """Remove snapshots written before ``old`` that no record names, blobs no other snapshot uses, checkouts."""
        references = [r for r in self.store.list_snapshot_references() if r.execution_id not in gone]
        named = {r.snapshot_id for r in references}
        unused = {snapshot_id for snapshot_id, written in listing.snapshots.items()
                  if snapshot_id not in named and _older(written, old)}
        for snapshot_id in sorted(unused):
            uri = manifest_uri(self.artifacts, snapshot_id)
            if _older(self.artifacts.modified(uri), old):  # not saved again by a run since it was listed
                self._remove_artifact(uri, "code snapshot")
        users = _BlobUsers(self.artifacts, unused if self.report.dry_run else set())
        for digest, uri in sorted(listing.blobs.items()):
            if digest in users.used or not _older(self.artifacts.modified(uri), old):
                continue
            users.refresh()  # just before deciding: a snapshot a run saved meanwhile may use this blob
            if users.unreadable:  # its blobs are unknown: remove none
                self.report.kept.append((self.artifacts.uri(SNAPSHOTS_FOLDER, "blobs"), users.unreadable))
                break
            if digest not in users.used:
                self._remove_artifact(uri, "code blob")
        # a checkout is named by its snapshot id, one being made by ".<its first 12 characters>.<random>"
        running = {r.snapshot_id[:12] for r in references if r.running}
        for path in listing.checkouts:
            if path.name.lstrip(".")[:12] not in running and _older(_written(path), old):
                self._remove_local(path, "checkout")

    def _settle_lost(self, record: ExecutionRecord) -> None:
        """Claim the lost execution, have the executor end the jobs it left running, and mark it Failed."""
        epoch = claim_lost(self.store, record, owner_name(), self.settings.orchestrator_timeout_seconds)
        if epoch is None:
            raise ForgelineError(f"execution {record.id} was resumed meanwhile; stop it first "
                                 f"(forgeline executions stop {record.id}), then delete it")
        end_lost_execution(fenced(self.store, epoch), self.executor, record.id, ExecutionStatus.FAILED,
                           "orchestrator lost; deleted")

    def _remove(self, records: list[ExecutionRecord], references: list[ArtifactReference]) -> None:
        ids = {record.id for record in records}
        kept = [r for r in references if not (r.holder == ReferenceHolder.STEP_RUN and r.execution_id in ids)]
        self._expire_cache_entries(ids, kept)
        if not self.report.dry_run and records:
            # Read again now that the expired entries are gone: a cache hit made meanwhile protects what it reuses.
            kept = [r for r in self.store.list_artifact_references()
                    if not (r.holder == ReferenceHolder.STEP_RUN and r.execution_id in ids)]
        users = self._users(kept)
        for record in records:
            if not self.report.dry_run:
                try:
                    self.store.delete_execution(record.id)  # the record first: a crash after it leaves leftovers
                except ExecutionNotFoundError:
                    continue  # another delete or collection was faster
            self.report.removed.append(Removal("execution", record.id))
            self._prune_artifacts(self.artifacts.uri(EXECUTIONS_FOLDER, record.id), users, kind="artifacts")
            self._remove_local(self.settings.jobs_dir / record.id, "job folder")
            self._remove_local(self.settings.logs_dir / record.id, "logs")

    def _expire_cache_entries(self, execution_ids: Iterable[str | None], kept: list[ArtifactReference]) -> None:
        """Delete the cache entries of these executions that no kept step reused, and remember them as expired."""
        reused = {r.location for r in kept if r.holder == ReferenceHolder.STEP_RUN}
        entries: dict[str | None, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
        for r in kept:
            if r.holder == ReferenceHolder.CACHE_ENTRY:
                entries[r.execution_id][r.name].append(r.location)
        for execution_id in execution_ids:
            if execution_id is None:
                continue
            locations = entries.get(execution_id, {})
            keys = {entry.cache_key for entry in self.store.list_cache_entries_of(execution_id)} | set(locations)
            for key in sorted(keys):
                if any(location in reused for location in locations.get(key, ())):
                    continue
                if not self.report.dry_run:
                    self.store.delete_cache_entry(execution_id, key)
                self._dead.add((execution_id, key))
                self.report.removed.append(Removal("cache entry", f"{key[:12]} of execution {execution_id}"))

    def _users(self, references: list[ArtifactReference]) -> _Users:
        """The references that still count (expired cache entries' do not), indexed by execution folder."""
        live = [r for r in references
                if not (r.holder == ReferenceHolder.CACHE_ENTRY and (r.execution_id, r.name) in self._dead)]
        return _Users(live, self.artifacts.uri(EXECUTIONS_FOLDER))

    def _prune_artifacts(self, folder: str, kept: _Users, *, kind: str) -> None:
        """Remove an execution's artifact folder, or, when something still uses part of it, every other output."""
        users = kept.touching(folder)
        if not users:
            self._remove_artifact(folder, kind)
            return
        for step_folder in self.artifacts.children(folder):
            step_users = [r for r in users if _overlaps(r.location, step_folder)]
            if not step_users:
                self._remove_artifact(step_folder, kind)
                continue
            for output in self.artifacts.children(step_folder):
                output_users = [r for r in step_users if _overlaps(r.location, output)]
                if output_users:
                    self.report.kept.append((output, ", ".join(sorted({r.describe() for r in output_users}))))
                else:
                    self._remove_artifact(output, kind)

    def _remove_package_leftovers(self, folders: list[str], kept: _Users) -> None:
        """Remove package folders no package uses, left by a registration that crashed, once its execution ended."""
        for folder in folders:
            if kept.touching(folder):
                continue
            execution_id = package_folder_execution(_name(folder))
            if execution_id is None:
                continue  # not named by forgeline: leave it alone
            try:
                if not self.store.get_execution(execution_id).status.is_terminal:
                    continue  # its registration may be copying the code right now
            except ExecutionNotFoundError:
                pass
            self._remove_artifact(folder, "leftover")

    def _remove_artifact(self, uri: str, kind: str) -> None:
        if not self.artifacts.exists(uri):
            return
        size = self.artifacts.usage(uri)
        if not self.report.dry_run:
            self.artifacts.delete(uri)
        self.report.removed.append(Removal(kind, uri, size))

    def _remove_local(self, path: Path, kind: str) -> None:
        if not os.path.lexists(path):
            return
        size = local_files.disk_usage(str(path))
        if not self.report.dry_run:
            local_files.remove(str(path))
        self.report.removed.append(Removal(kind, str(path), size))


class _BlobUsers:
    """The blobs stored snapshots use; ``refresh`` reads the snapshots stored since it last looked."""

    def __init__(self, artifacts: ArtifactStore, leaving: set[str]) -> None:
        """``leaving``: snapshots being collected, whose blobs do not count."""
        self.artifacts = artifacts
        self.seen = set(leaving)
        self.used: set[str] = set()
        self.unreadable = ""  # why blobs cannot be collected: a snapshot whose manifest cannot be read

    def refresh(self) -> None:
        """Add the blobs of every snapshot not read yet."""
        for snapshot_id in sorted(list_snapshot_ids(self.artifacts) - self.seen):
            self.seen.add(snapshot_id)
            try:
                self.used.update(entry.sha256 for entry in read_snapshot(self.artifacts, snapshot_id).values())
            except ArtifactNotFoundError:
                continue  # collected meanwhile by another gc
            except ForgelineError as exc:
                self.unreadable = f"snapshot {snapshot_id}, which cannot be read ({exc})"


class _Users:
    """Kept references indexed by the execution folder they point into, so each lookup scans few of them."""

    def __init__(self, references: list[ArtifactReference], executions_root: str) -> None:
        self.prefix = executions_root.rstrip("/") + "/"
        self.by_execution: dict[str, list[ArtifactReference]] = defaultdict(list)
        self.elsewhere: list[ArtifactReference] = []  # model packages' code, user paths, whole roots
        for reference in references:
            execution = self._execution_of(reference.location)
            (self.by_execution[execution] if execution else self.elsewhere).append(reference)

    def touching(self, folder: str) -> list[ArtifactReference]:
        """The references to the folder, into it, or to a folder that holds it."""
        candidates = self.elsewhere + self.by_execution.get(self._execution_of(folder) or "", [])
        return [r for r in candidates if _overlaps(r.location, folder)]

    def _execution_of(self, location: str) -> str | None:
        if not location.startswith(self.prefix):
            return None
        return location[len(self.prefix):].split("/", 1)[0] or None


def discard_job_folder(settings: Settings, execution_id: str, step_name: str) -> None:
    """Remove a succeeded step's job folders (every attempt's), unless the settings keep them."""
    if not settings.keep_jobs:
        shutil.rmtree(settings.jobs_dir / execution_id / step_name, ignore_errors=True)


def discard_empty_jobs_folder(settings: Settings, execution_id: str) -> None:
    """Remove an ended execution's jobs folder if no step left anything in it."""
    try:
        os.rmdir(settings.jobs_dir / execution_id)
    except OSError:
        pass  # absent, or it keeps failed steps' folders


def _overlaps(location: str, folder: str) -> bool:
    """Whether a referenced location is the folder, inside it, or contains it."""
    location, folder = location.rstrip("/"), folder.rstrip("/")
    return location == folder or location.startswith(folder + "/") or folder.startswith(location + "/")


def _name(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


def _written(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return None


def _older(written: float | None, than: float) -> bool:
    """Whether something written at ``written`` (None: gone) is older than ``than`` (POSIX seconds)."""
    return written is not None and written < than


def _subfolders(path: Path) -> list[Path]:
    try:
        return sorted(entry for entry in path.iterdir() if entry.is_dir())
    except FileNotFoundError:
        return []
