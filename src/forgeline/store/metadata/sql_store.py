"""SqlMetadataStore: the MetadataStore over SQLAlchemy (SQLite by default, PostgreSQL or any other URL)."""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from forgeline.errors import StoreError
from forgeline.store.metadata import (
    cache_entries_repository,
    content_index_repository,
    endpoints_repository,
    executions_repository,
    housekeeping_repository,
    metric_points_repository,
    model_packages_repository,
    pipelines_repository,
    steps_repository,
)
from forgeline.store.metadata.connection import create_metadata_engine, read_only
from forgeline.store.metadata.digest import compute_definition_digest
from forgeline.store.metadata.endpoint_store import EndpointRecord, EndpointStatus
from forgeline.store.metadata.housekeeping_store import ArtifactReference
from forgeline.store.metadata.migrate import ensure_schema
from forgeline.store.metadata.records import (
    CacheEntry,
    ContentIndexEntry,
    ExecutionRecord,
    ExecutionStatus,
    MetricPoint,
    ModelPackageDraft,
    ModelPackageEvent,
    ModelPackageGroupSummary,
    ModelPackageRecord,
    PipelineSummary,
    PipelineVersion,
    StepAttempt,
    StepRun,
    StepStatus,
)
from forgeline.store.metadata.rows import execution_values, step_run_values
from forgeline.workflow.models import ModelApprovalStatus

_SAVE_ATTEMPTS = 5


class SqlMetadataStore:
    """MetadataStore on a SQL database; every public method is one short transaction."""

    def __init__(self, database_url: str, *, create: bool = True) -> None:
        """Connect and make sure the schema is current (one cheap query when it already is).

        ``create=False``: a SQLite file that does not exist is refused (StoreNotFoundError), not created.
        """
        self._engine = create_metadata_engine(database_url, create=create)
        self._reader = read_only(self._engine)
        try:
            ensure_schema(self._engine)
        except BaseException:
            self._engine.dispose()
            raise

    @property
    def database_url(self) -> str:
        """The database URL with any password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Close pooled connections (the store stays usable and reconnects on its next call)."""
        self._engine.dispose()

    def save_pipeline_version(self, name: str, definition: dict[str, Any]) -> PipelineVersion:
        """Store the definition as the pipeline's next version, or return the stored version with its digest."""
        digest = compute_definition_digest(definition)
        # Exactly what the JSON column hands back later, so this record equals get_pipeline_version's.
        stored = json.loads(json.dumps(definition))
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            try:
                with self._engine.begin() as connection:
                    return pipelines_repository.save_version(connection, name, stored, digest)
            except IntegrityError as error:
                # Another process inserted this version number first (SQLite serialises writers, so this is
                # PostgreSQL's race); the next round sees its row.
                if attempt == _SAVE_ATTEMPTS:
                    raise StoreError(f"could not save a new version of pipeline '{name}': {error.orig}") from error
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def get_pipeline_version(self, name: str, version: int | None = None) -> PipelineVersion:
        """One version of a pipeline (None: the newest); PipelineNotFoundError when absent."""
        with self._reader.begin() as connection:
            return pipelines_repository.load_version(connection, name, version)

    def list_pipeline_versions(self, name: str) -> list[PipelineVersion]:
        """Every version of a pipeline, oldest first; PipelineNotFoundError when it has none."""
        with self._reader.begin() as connection:
            return pipelines_repository.list_versions(connection, name)

    def list_pipelines(self) -> list[PipelineSummary]:
        """Every pipeline with its newest version and execution count, by name."""
        with self._reader.begin() as connection:
            return pipelines_repository.list_summaries(connection)

    def create_execution(
        self,
        *,
        execution_id: str,
        pipeline_name: str,
        pipeline_version: int,
        parameters: dict[str, Any],
        work_dir: str,
        steps: list[tuple[str, str]],
        parent_execution_id: str | None = None,
    ) -> ExecutionRecord:
        """Record a new Executing execution and one Pending StepRun per (name, kind), in order."""
        names = [name for name, _ in steps]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate step names for execution '{execution_id}': {', '.join(duplicates)}")
        with self._engine.begin() as connection:
            executions_repository.insert_execution(
                connection,
                execution_id=execution_id,
                pipeline_name=pipeline_name,
                pipeline_version=pipeline_version,
                parameters=parameters,
                work_dir=work_dir,
                parent_execution_id=parent_execution_id,
            )
            steps_repository.append_step_runs(connection, execution_id, steps)
            return executions_repository.load_execution(connection, execution_id)

    def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with this id or unique id prefix (4+ characters); ExecutionNotFoundError otherwise."""
        with self._reader.begin() as connection:
            return executions_repository.resolve_execution(connection, execution_id)

    def list_executions(self, pipeline_name: str | None = None, limit: int = 50, *,
                        statuses: Collection[ExecutionStatus] | None = None,
                        since: datetime | None = None) -> list[ExecutionRecord]:
        """Executions, newest first, optionally of one pipeline, of some statuses, created at or after since."""
        with self._reader.begin() as connection:
            return executions_repository.list_executions(connection, pipeline_name, limit, statuses, since)

    def update_execution(self, execution_id: str, **fields: Any) -> ExecutionRecord:
        """Set some of the execution's fields; ValueError names any that cannot be set.

        Settable: status, started_at, ended_at, failure_reason, orchestrator_pid, heartbeat_at and
        parent_execution_id (an existing execution's full id, or None).
        """
        values = execution_values(fields)
        with self._engine.begin() as connection:
            return executions_repository.update_execution(connection, execution_id, values)

    def request_stop(self, execution_id: str) -> ExecutionRecord:
        """Move an Executing execution to Stopping; any other execution comes back unchanged."""
        with self._engine.begin() as connection:
            return executions_repository.request_stop(connection, execution_id)

    def claim_lost_execution(self, execution_id: str, last_heartbeat_at: datetime | None) -> bool:
        """Take over an unfinished execution whose last heartbeat is still the one seen; False if another did."""
        with self._engine.begin() as connection:
            return executions_repository.claim_lost_execution(connection, execution_id, last_heartbeat_at)

    def list_step_runs(self, execution_id: str) -> list[StepRun]:
        """The execution's step runs in the order they were added."""
        with self._reader.begin() as connection:
            return steps_repository.list_step_runs(connection, execution_id)

    def get_step_run(self, execution_id: str, name: str) -> StepRun:
        """One step run; StepNotFoundError when the execution has no such step."""
        with self._reader.begin() as connection:
            return steps_repository.load_step_run(connection, execution_id, name)

    def update_step_run(self, execution_id: str, name: str, **fields: Any) -> StepRun:
        """Set any StepRun fields except execution_id, name and kind."""
        values = step_run_values(fields)
        with self._engine.begin() as connection:
            return steps_repository.update_step_run(connection, execution_id, name, values)

    def add_step_runs(self, execution_id: str, steps: list[tuple[str, str]]) -> None:
        """Append Pending step runs (e.g. ForEach iterations); names already present are ignored."""
        with self._engine.begin() as connection:
            executions_repository.load_execution(connection, execution_id)
            steps_repository.append_step_runs(connection, execution_id, steps)

    def start_attempt(self, execution_id: str, step_name: str, *, log_path: str | None) -> StepAttempt:
        """Open the step's next attempt (Executing) and count it on the StepRun."""
        with self._engine.begin() as connection:
            return steps_repository.start_attempt(connection, execution_id, step_name, log_path)

    def finish_attempt(
        self,
        execution_id: str,
        step_name: str,
        attempt: int,
        *,
        status: StepStatus,
        failure_kind: str | None = None,
        failure_reason: str | None = None,
    ) -> StepAttempt:
        """Close an attempt with its final status and, when it failed, why."""
        with self._engine.begin() as connection:
            return steps_repository.finish_attempt(
                connection,
                execution_id,
                step_name,
                attempt,
                status=status,
                failure_kind=failure_kind,
                failure_reason=failure_reason,
            )

    def list_attempts(self, execution_id: str, step_name: str | None = None) -> list[StepAttempt]:
        """Attempts of one step, or of the whole execution, in the order they started."""
        with self._reader.begin() as connection:
            return steps_repository.list_attempts(connection, execution_id, step_name)

    def set_attempt_pid(self, execution_id: str, step_name: str, attempt: int, pid: int | None) -> None:
        """Record (None: clear) the OS process id of an attempt's job, so a resumed orchestrator can end it."""
        with self._engine.begin() as connection:
            steps_repository.set_attempt_pid(connection, execution_id, step_name, attempt, pid)

    def put_cache_entry(self, entry: CacheEntry) -> None:
        """Add a reusable result of a succeeded step; older entries with the same key stay."""
        with self._engine.begin() as connection:
            cache_entries_repository.insert_cache_entry(connection, entry)

    def find_cache_entries(
        self, cache_key: str, *, not_before: datetime | None = None, limit: int = 5
    ) -> list[CacheEntry]:
        """Up to limit entries with this key, newest first, none created before not_before."""
        with self._reader.begin() as connection:
            return cache_entries_repository.find_cache_entries(connection, cache_key, not_before, limit)

    def latest_cache_entry(self, pipeline_name: str, step_name: str) -> CacheEntry | None:
        """The newest entry of one pipeline step whatever its key (to explain a cache miss), or None."""
        with self._reader.begin() as connection:
            return cache_entries_repository.latest_cache_entry(connection, pipeline_name, step_name)

    def delete_cache_entries(self, *, pipeline_name: str | None = None, cache_key: str | None = None) -> int:
        """Delete the entries matching every given filter (none given: all) and return how many went."""
        with self._engine.begin() as connection:
            return cache_entries_repository.delete_cache_entries(connection, pipeline_name, cache_key)

    def lookup_content(self, paths: Iterable[str]) -> dict[str, ContentIndexEntry]:
        """The content index's entries for those of these paths it knows, keyed by path."""
        with self._reader.begin() as connection:
            return content_index_repository.lookup(connection, paths)

    def remember_content(self, entries: Iterable[ContentIndexEntry]) -> None:
        """Insert or replace content index entries (for a path given twice, the last wins)."""
        with self._engine.begin() as connection:
            content_index_repository.remember(connection, entries)

    def add_metric_points(self, points: Sequence[MetricPoint]) -> None:
        """Append metric points of existing step runs; StepNotFoundError names a missing step."""
        with self._engine.begin() as connection:
            metric_points_repository.insert_metric_points(connection, points)

    def list_metric_points(
        self, execution_id: str, step_name: str | None = None, name: str | None = None
    ) -> list[MetricPoint]:
        """An execution's metric points, optionally of one step and metric, ordered by step, attempt and seq."""
        with self._reader.begin() as connection:
            return metric_points_repository.list_metric_points(connection, execution_id, step_name, name)

    def create_model_package(self, draft: ModelPackageDraft, *, actor: str) -> ModelPackageRecord:
        """Store the draft as its group's next version, creating the group if needed; record its first event."""
        stored = replace(draft, metrics=json.loads(json.dumps(draft.metrics)),
                         lineage=json.loads(json.dumps(draft.lineage)))
        for attempt in range(1, _SAVE_ATTEMPTS + 1):
            try:
                # SQLite: BEGIN IMMEDIATE makes registrations queue up, so each reads the newest version first.
                with self._engine.begin() as connection:
                    return model_packages_repository.insert_package(connection, stored, actor)
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
        with self._reader.begin() as connection:
            return model_packages_repository.load_package(connection, group, version)

    def list_model_packages(self, group: str, status: ModelApprovalStatus | None = None) -> list[ModelPackageRecord]:
        """The group's packages, newest first, optionally with one status only."""
        with self._reader.begin() as connection:
            return model_packages_repository.list_packages(connection, group, status)

    def list_model_package_groups(self) -> list[ModelPackageGroupSummary]:
        """Every group with its counts and newest (Approved) versions, by name."""
        with self._reader.begin() as connection:
            return model_packages_repository.list_groups(connection)

    def latest_approved_model_package(self, group: str) -> ModelPackageRecord:
        """The group's Approved package with the highest version; ModelPackageNotFoundError when none is."""
        with self._reader.begin() as connection:
            return model_packages_repository.latest_approved(connection, group)

    def update_model_package_status(
        self, group: str, version: int, status: ModelApprovalStatus | str, *, actor: str, note: str | None = None
    ) -> ModelPackageEvent:
        """Move a package to ``status`` and return the recorded transition."""
        with self._engine.begin() as connection:
            return model_packages_repository.update_status(connection, group, version, status, actor, note)

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
        with self._reader.begin() as connection:
            return model_packages_repository.list_events(connection, group, version, to_status, after, limit)

    def create_endpoint(self, name: str, config: dict[str, Any]) -> EndpointRecord:
        """Store a new endpoint (revision 1, Creating); EndpointError when the name is taken."""
        with self._engine.begin() as connection:
            return endpoints_repository.insert_endpoint(connection, name, json.loads(json.dumps(config)))

    def update_endpoint(self, name: str, config: dict[str, Any]) -> EndpointRecord:
        """Replace the configuration, count the revision up and mark it Updating; EndpointNotFoundError."""
        with self._engine.begin() as connection:
            return endpoints_repository.replace_config(connection, name, json.loads(json.dumps(config)))

    def set_endpoint_status(self, name: str, revision: int, status: EndpointStatus, *, message: str | None = None,
                            deployed: dict[str, Any] | None = None) -> bool:
        """Record what a server made of ``revision``; False (nothing changes) when the endpoint moved on or went."""
        with self._engine.begin() as connection:
            return endpoints_repository.set_status(connection, name, revision, status, message, deployed)

    def get_endpoint(self, name: str) -> EndpointRecord:
        """One endpoint; EndpointNotFoundError names the ones that exist."""
        with self._reader.begin() as connection:
            return endpoints_repository.load_endpoint(connection, name)

    def list_endpoints(self) -> list[EndpointRecord]:
        """Every endpoint, by name."""
        with self._reader.begin() as connection:
            return endpoints_repository.list_endpoints(connection)

    def delete_endpoint(self, name: str) -> None:
        """Remove an endpoint; EndpointNotFoundError when there is none by that name."""
        with self._engine.begin() as connection:
            endpoints_repository.delete_endpoint(connection, name)

    def list_finished_executions(self, ended_before: datetime) -> list[ExecutionRecord]:
        """Stopped, Failed and Succeeded executions that ended before ``ended_before``, oldest first."""
        with self._reader.begin() as connection:
            return housekeeping_repository.list_finished_executions(connection, ended_before)

    def list_execution_ids(self) -> set[str]:
        """The id of every execution, whatever its status."""
        with self._reader.begin() as connection:
            return housekeeping_repository.list_execution_ids(connection)

    def delete_execution(self, execution_id: str) -> None:
        """Delete a finished execution with its steps, attempts and metrics; StoreError if it is not finished."""
        with self._engine.begin() as connection:
            housekeeping_repository.delete_finished_execution(connection, execution_id)

    def list_cache_entries_of(self, execution_id: str) -> list[CacheEntry]:
        """The cache entries a given execution produced."""
        with self._reader.begin() as connection:
            return housekeeping_repository.list_cache_entries_of(connection, execution_id)

    def delete_cache_entry(self, execution_id: str, cache_key: str) -> int:
        """Delete the cache entries with this key that this execution produced; how many went."""
        with self._engine.begin() as connection:
            return housekeeping_repository.delete_cache_entry(connection, execution_id, cache_key)

    def list_artifact_references(self) -> list[ArtifactReference]:
        """Every location a step run, cache entry or model package points at."""
        with self._reader.begin() as connection:
            return housekeeping_repository.list_artifact_references(connection)
