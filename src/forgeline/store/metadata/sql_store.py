"""SqlMetadataStore: the MetadataStore over SQLAlchemy (SQLite by default, PostgreSQL or any other URL)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from forgeline.config import DEFAULT_STORE_RETRY_SECONDS
from forgeline.errors import StoreError, StoreReplacedError
from forgeline.store.metadata import (
    cache_entries_repository,
    content_index_repository,
    endpoints_repository,
    housekeeping_repository,
    metric_points_repository,
    model_packages_repository,
    ownership_repository,
    pipelines_repository,
)
from forgeline.store.metadata.connection import SQLITE_BUSY_TIMEOUT_SECONDS, create_metadata_engine
from forgeline.store.metadata.digest import compute_definition_digest
from forgeline.store.metadata.endpoint_store import EndpointRecord, EndpointStatus
from forgeline.store.metadata.housekeeping_store import ArtifactReference, SnapshotReference
from forgeline.store.metadata.migrate import ensure_schema
from forgeline.store.metadata.records import (
    CacheEntry,
    ContentIndexEntry,
    ExecutionRecord,
    MetricPoint,
    ModelPackageDraft,
    ModelPackageEvent,
    ModelPackageGroupSummary,
    ModelPackageRecord,
    PipelineSummary,
    PipelineVersion,
)
from forgeline.store.metadata.sql_alarm_store import SqlAlarmStore
from forgeline.store.metadata.sql_execution_store import SqlExecutionStore
from forgeline.store.metadata.sql_schedule_store import SqlScheduleStore
from forgeline.store.metadata.sql_server_store import SqlServerStore
from forgeline.store.metadata.transactions import Transactions
from forgeline.workflow.models import ModelApprovalStatus

_SAVE_ATTEMPTS = 5


class SqlMetadataStore(SqlExecutionStore, SqlServerStore, SqlAlarmStore, SqlScheduleStore):
    """MetadataStore on a SQL database; every public method is one short transaction."""

    def __init__(self, database_url: str, *, create: bool = True,
                 retry_seconds: float = DEFAULT_STORE_RETRY_SECONDS) -> None:
        """Connect and make sure the schema is current (one cheap query when it already is).

        ``create=False``: a SQLite file that does not exist is refused (StoreNotFoundError), not created.
        ``retry_seconds``: how long a call keeps trying through a locked or unreachable database
        (FORGELINE_STORE_RETRY_SECONDS) before StoreUnavailableError.
        """
        # SQLite's own wait for a lock is the first part of each try, so several tries fit in retry_seconds.
        busy_timeout = min(SQLITE_BUSY_TIMEOUT_SECONDS, retry_seconds / 3)
        self._engine = create_metadata_engine(database_url, create=create, busy_timeout_seconds=busy_timeout)
        try:
            ensure_schema(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._tx = Transactions(self._engine, retry_seconds)

    @property
    def database_url(self) -> str:
        """The database URL with any password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close pooled connections (the store stays usable and reconnects on its next call)."""
        self._engine.dispose()

    def on_its_file(self) -> bool:
        """Whether the SQLite file this store opened is still the one at its path (other databases: always)."""
        try:
            self._tx.check_file()
        except StoreReplacedError:
            return False
        return True

    def reusable(self) -> bool:
        """Whether this store, opened earlier (in this process or before a fork), may serve now: False when its
        SQLite file was deleted or replaced since; else its schema is checked again, as opening it would."""
        if not self.on_its_file():
            return False
        ensure_schema(self._engine)
        return True

    def save_pipeline_version(self, name: str, definition: dict[str, Any],
                              code_snapshot: str | None = None) -> PipelineVersion:
        """Store the definition as the pipeline's next version, or return the stored version with its digest.

        A code_snapshot given becomes the version's latest snapshot (also on a version stored before).
        """
        digest = compute_definition_digest(definition)
        # Exactly what the JSON column hands back later, so this record equals get_pipeline_version's.
        stored = json.loads(json.dumps(definition))
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            try:
                return self._tx.write(
                    lambda connection: pipelines_repository.save_version(connection, name, stored, digest,
                                                                         code_snapshot))
            except IntegrityError as error:
                # Another process inserted this version number first (SQLite serialises writers, so this is
                # PostgreSQL's race); the next round sees its row.
                if attempt == _SAVE_ATTEMPTS:
                    raise StoreError(f"could not save a new version of pipeline '{name}': {error.orig}") from error
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def get_pipeline_version(self, name: str, version: int | None = None) -> PipelineVersion:
        """One version of a pipeline (None: the newest); PipelineNotFoundError when absent."""
        return self._tx.read(lambda connection: pipelines_repository.load_version(connection, name, version))

    def list_pipeline_versions(self, name: str) -> list[PipelineVersion]:
        """Every version of a pipeline, oldest first; PipelineNotFoundError when it has none."""
        return self._tx.read(lambda connection: pipelines_repository.list_versions(connection, name))

    def list_pipelines(self) -> list[PipelineSummary]:
        """Every pipeline with its newest version and execution count, by name."""
        return self._tx.read(lambda connection: pipelines_repository.list_summaries(connection))

    def put_cache_entry(self, entry: CacheEntry, *, epoch: int | None = None) -> None:
        """Add a reusable result of a succeeded step; older entries with the same key stay."""

        def work(connection: Connection) -> None:
            ownership_repository.check_epoch(connection, entry.execution_id, epoch)
            cache_entries_repository.insert_cache_entry(connection, entry)

        self._tx.write(work)

    def find_cache_entries(
        self, cache_key: str, *, not_before: datetime | None = None, limit: int = 5
    ) -> list[CacheEntry]:
        """Up to limit entries with this key, newest first, none created before not_before."""
        return self._tx.read(lambda connection: cache_entries_repository.find_cache_entries(
            connection, cache_key, not_before, limit))

    def latest_cache_entry(self, pipeline_name: str, step_name: str) -> CacheEntry | None:
        """The newest entry of one pipeline step whatever its key (to explain a cache miss), or None."""
        return self._tx.read(lambda connection: cache_entries_repository.latest_cache_entry(
            connection, pipeline_name, step_name))

    def delete_cache_entries(self, *, pipeline_name: str | None = None, cache_key: str | None = None) -> int:
        """Delete the entries matching every given filter (none given: all) and return how many went."""
        return self._tx.write(lambda connection: cache_entries_repository.delete_cache_entries(
            connection, pipeline_name, cache_key))

    def lookup_content(self, paths: Iterable[str]) -> dict[str, ContentIndexEntry]:
        """The content index's entries for those of these paths it knows, keyed by path."""
        return self._tx.read(lambda connection: content_index_repository.lookup(connection, paths))

    def remember_content(self, entries: Iterable[ContentIndexEntry]) -> None:
        """Insert or replace content index entries (for a path given twice, the last wins)."""
        self._tx.write(lambda connection: content_index_repository.remember(connection, entries))

    def add_metric_points(self, points: Sequence[MetricPoint], *, epoch: int | None = None) -> None:
        """Append metric points of existing step runs; StepNotFoundError names a missing step."""

        def work(connection: Connection) -> None:
            for execution_id in sorted({point.execution_id for point in points}):
                ownership_repository.check_epoch(connection, execution_id, epoch)
            metric_points_repository.insert_metric_points(connection, points)

        self._tx.write(work)

    def list_metric_points(
        self, execution_id: str, step_name: str | None = None, name: str | None = None
    ) -> list[MetricPoint]:
        """An execution's metric points, optionally of one step and metric, ordered by step, attempt and seq."""
        return self._tx.read(lambda connection: metric_points_repository.list_metric_points(
            connection, execution_id, step_name, name))

    def create_model_package(self, draft: ModelPackageDraft, *, actor: str,
                             epoch: int | None = None) -> ModelPackageRecord:
        """Store the draft as its group's next version, creating the group if needed; record its first event."""
        stored = replace(draft, metrics=json.loads(json.dumps(draft.metrics)),
                         lineage=json.loads(json.dumps(draft.lineage)))
        execution_id = stored.lineage.get("execution_id")
        if epoch is not None and not isinstance(execution_id, str):
            raise ValueError("a registration fenced by an epoch needs lineage['execution_id'], the execution's id")

        def work(connection: Connection) -> ModelPackageRecord:
            if isinstance(execution_id, str):
                ownership_repository.check_epoch(connection, execution_id, epoch)
            return model_packages_repository.insert_package(connection, stored, actor)

        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            try:
                # SQLite: BEGIN IMMEDIATE makes registrations queue up, so each reads the newest version first.
                return self._tx.write(work)
            except IntegrityError as error:
                # Another process took this version number (or created the group) first: the next round sees it.
                if attempt == _SAVE_ATTEMPTS:
                    raise StoreError(
                        f"could not register a new version of model package group '{draft.group}': {error.orig}"
                    ) from error
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def get_model_package(self, group: str, version: int) -> ModelPackageRecord:
        """One package; ModelPackageNotFoundError names an unknown group or version."""
        return self._tx.read(lambda connection: model_packages_repository.load_package(connection, group, version))

    def list_model_packages(self, group: str, status: ModelApprovalStatus | None = None) -> list[ModelPackageRecord]:
        """The group's packages, newest first, optionally with one status only."""
        return self._tx.read(lambda connection: model_packages_repository.list_packages(connection, group, status))

    def list_model_package_groups(self) -> list[ModelPackageGroupSummary]:
        """Every group with its counts and newest (Approved) versions, by name."""
        return self._tx.read(lambda connection: model_packages_repository.list_groups(connection))

    def latest_approved_model_package(self, group: str) -> ModelPackageRecord:
        """The group's Approved package with the highest version; ModelPackageNotFoundError when none is."""
        return self._tx.read(lambda connection: model_packages_repository.latest_approved(connection, group))

    def update_model_package_status(
        self, group: str, version: int, status: ModelApprovalStatus | str, *, actor: str, note: str | None = None
    ) -> ModelPackageEvent:
        """Move a package to ``status`` and return the recorded transition."""
        return self._tx.write(lambda connection: model_packages_repository.update_status(
            connection, group, version, status, actor, note))

    def list_model_package_events(
        self,
        group: str | None = None,
        *,
        version: int | None = None,
        to_status: ModelApprovalStatus | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[ModelPackageEvent]:
        """Status transitions matching every given filter, oldest first (the newest ``limit`` when given)."""
        return self._tx.read(lambda connection: model_packages_repository.list_events(
            connection, group, version, to_status, after, limit))

    def create_endpoint(self, name: str, config: dict[str, Any]) -> EndpointRecord:
        """Store a new endpoint (revision 1, Creating); EndpointError when the name is taken."""
        return self._tx.write(lambda connection: endpoints_repository.insert_endpoint(
            connection, name, json.loads(json.dumps(config))))

    def update_endpoint(self, name: str, config: dict[str, Any]) -> EndpointRecord:
        """Replace the configuration, count the revision up and mark it Updating; EndpointNotFoundError."""
        return self._tx.write(lambda connection: endpoints_repository.replace_config(
            connection, name, json.loads(json.dumps(config))))

    def set_endpoint_status(self, name: str, revision: int, status: EndpointStatus, *, message: str | None = None,
                            deployed: dict[str, Any] | None = None) -> bool:
        """Record what a server made of ``revision``; False (nothing changes) when the endpoint moved on or went."""
        return self._tx.write(lambda connection: endpoints_repository.set_status(
            connection, name, revision, status, message, deployed))

    def get_endpoint(self, name: str) -> EndpointRecord:
        """One endpoint; EndpointNotFoundError names the ones that exist."""
        return self._tx.read(lambda connection: endpoints_repository.load_endpoint(connection, name))

    def list_endpoints(self) -> list[EndpointRecord]:
        """Every endpoint, by name."""
        return self._tx.read(lambda connection: endpoints_repository.list_endpoints(connection))

    def delete_endpoint(self, name: str) -> None:
        """Remove an endpoint; EndpointNotFoundError when there is none by that name."""
        self._tx.write(lambda connection: endpoints_repository.delete_endpoint(connection, name))

    def list_finished_executions(self, ended_before: datetime) -> list[ExecutionRecord]:
        """Stopped, Failed and Succeeded executions that ended before ``ended_before``, oldest first."""
        return self._tx.read(lambda connection: housekeeping_repository.list_finished_executions(
            connection, ended_before))

    def list_execution_ids(self) -> set[str]:
        """The id of every execution, whatever its status."""
        return self._tx.read(lambda connection: housekeeping_repository.list_execution_ids(connection))

    def delete_execution(self, execution_id: str) -> None:
        """Delete a finished execution with its steps, attempts and metrics; StoreError if it is not finished."""
        self._tx.write(lambda connection: housekeeping_repository.delete_finished_execution(connection, execution_id))

    def list_cache_entries_of(self, execution_id: str) -> list[CacheEntry]:
        """The cache entries a given execution produced."""
        return self._tx.read(lambda connection: housekeeping_repository.list_cache_entries_of(connection, execution_id))

    def delete_cache_entry(self, execution_id: str, cache_key: str) -> int:
        """Delete the cache entries with this key that this execution produced; how many went."""
        return self._tx.write(lambda connection: housekeeping_repository.delete_cache_entry(
            connection, execution_id, cache_key))

    def list_artifact_references(self) -> list[ArtifactReference]:
        """Every location a step run, cache entry or model package points at."""
        return self._tx.read(lambda connection: housekeeping_repository.list_artifact_references(connection))

    def list_snapshot_references(self) -> list[SnapshotReference]:
        """Every code snapshot an execution, pipeline version, schedule or trigger names."""
        return self._tx.read(lambda connection: housekeeping_repository.list_snapshot_references(connection))
