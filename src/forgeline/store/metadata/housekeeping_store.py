"""HousekeepingStore: what deleting executions and collecting garbage need from the metadata store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from forgeline.store.metadata.records import CacheEntry, ExecutionRecord


class ReferenceHolder(StrEnum):
    """What kind of record points at a stored location."""

    STEP_RUN = "step run"
    CACHE_ENTRY = "cache entry"
    MODEL_PACKAGE = "model package"


@dataclass(frozen=True)
class ArtifactReference:
    """A location (URI or path) a record still points at, and which record: such artifacts must not be deleted."""

    location: str
    holder: ReferenceHolder
    execution_id: str | None  # the step run's execution, the cache entry's source execution; None for a package
    name: str  # the step name, the cache key, or the package's ``group/version``

    def describe(self) -> str:
        """Who holds the reference, in words."""
        if self.holder == ReferenceHolder.MODEL_PACKAGE:
            return f"model package {self.name}"
        if self.holder == ReferenceHolder.CACHE_ENTRY:
            return f"a cache entry of execution {self.execution_id}"
        return f"step {self.name} of execution {self.execution_id}"


@dataclass(frozen=True)
class SnapshotReference:
    """A code snapshot a record still names: such a snapshot must not be collected."""

    snapshot_id: str
    holder: str  # "execution <id>", "pipeline <name> v<version>", "schedule <name>", "trigger <name>"
    execution_id: str | None = None  # the execution's id when an execution holds it
    running: bool = False  # held by an execution that has not ended (Queued, Executing or Stopping)


class HousekeepingStore(Protocol):
    """Listing and deleting finished executions and their cache entries; each call one transaction."""

    def list_finished_executions(self, ended_before: datetime) -> list[ExecutionRecord]:
        """Stopped, Failed and Succeeded executions that ended before ``ended_before``, oldest first."""
        ...

    def list_execution_ids(self) -> set[str]:
        """The id of every execution, whatever its status."""
        ...

    def delete_execution(self, execution_id: str) -> None:
        """Delete a finished execution with its steps, attempts and metrics; StoreError if it is not finished."""
        ...

    def list_cache_entries_of(self, execution_id: str) -> list[CacheEntry]:
        """The cache entries a given execution produced."""
        ...

    def delete_cache_entry(self, execution_id: str, cache_key: str) -> int:
        """Delete the cache entries with this key that this execution produced; how many went."""
        ...

    def list_artifact_references(self) -> list[ArtifactReference]:
        """Every location a step run, cache entry or model package points at."""
        ...

    def list_snapshot_references(self) -> list[SnapshotReference]:
        """Every code snapshot an execution, pipeline version, schedule or trigger names."""
        ...
