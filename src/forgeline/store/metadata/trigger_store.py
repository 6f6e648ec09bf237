"""TriggerStore: the part of the metadata store file triggers use (what they watch and every object they saw)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from forgeline.store.metadata.schedule_store import FireOutcome, StoredPipelineRef


@dataclass(frozen=True)
class TriggerDraft:
    """A file trigger to create: what it starts, which folder or prefix it watches, and how often it looks."""

    name: str
    pipeline: StoredPipelineRef
    watch: str
    pattern: str
    poll_seconds: float
    parameters: dict[str, Any]


@dataclass(frozen=True)
class TriggerRecord:
    """A stored file trigger, with when it last saw a new object and how many it saw."""

    name: str
    pipeline: StoredPipelineRef
    watch: str
    pattern: str
    poll_seconds: float
    parameters: dict[str, Any]
    paused: bool
    last_event_at: datetime | None
    created_at: datetime
    updated_at: datetime
    objects_seen: int = 0
    last_execution_id: str | None = None


@dataclass(frozen=True)
class TriggerObject:
    """One object a trigger saw (key and version) and what became of it."""

    id: int
    trigger_name: str
    key: str
    version: str
    outcome: FireOutcome
    seen_at: datetime
    execution_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ObjectOutcome:
    """What became of one claimed object: started (with its execution) or failed (with the reason)."""

    object_id: int
    outcome: FireOutcome
    execution_id: str | None = None
    reason: str | None = None


class TriggerStore(Protocol):
    """File triggers by name and the objects they saw; each call is one transaction."""

    def create_trigger(self, draft: TriggerDraft) -> TriggerRecord:
        """Store a new trigger; TriggerError when the name is taken."""
        ...

    def get_trigger(self, name: str) -> TriggerRecord:
        """One trigger; TriggerNotFoundError names the ones that exist."""
        ...

    def list_triggers(self) -> list[TriggerRecord]:
        """Every trigger, by name."""
        ...

    def set_trigger_paused(self, name: str, paused: bool) -> TriggerRecord:
        """Pause or resume a trigger."""
        ...

    def delete_trigger(self, name: str) -> None:
        """Remove a trigger and its objects; TriggerNotFoundError when there is none by that name."""
        ...

    def list_trigger_object_versions(self, name: str) -> set[tuple[str, str]]:
        """The (key, version) of every object the trigger saw, whatever became of it."""
        ...

    def claim_trigger_object(self, name: str, key: str, version: str) -> TriggerObject | None:
        """Record a new object as pending before anything starts; None when it was seen already."""
        ...

    def claim_trigger_objects(self, name: str, items: Sequence[tuple[str, str]]) -> list[TriggerObject]:
        """Record every (key, version) not seen before as pending, together; the rows of those it recorded."""
        ...

    def reject_trigger_object(self, name: str, key: str, version: str, reason: str,
                              alarm_payload: dict[str, Any]) -> bool:
        """Record a new object as rejected and write a trigger.rejected alarm event, together; False when seen."""
        ...

    def finish_trigger_object(self, object_id: int, outcome: FireOutcome, *, execution_id: str | None = None,
                              reason: str | None = None) -> None:
        """Record what became of a claimed object."""
        ...

    def finish_trigger_objects(self, outcomes: Sequence[ObjectOutcome]) -> None:
        """Record what became of several claimed objects, together."""
        ...

    def list_old_trigger_objects(self, name: str, before: datetime) -> list[TriggerObject]:
        """The trigger's objects seen before ``before`` whose outcome is final (not pending), oldest first."""
        ...

    def delete_trigger_objects(self, object_ids: Sequence[int]) -> int:
        """Forget these objects (a listed object not remembered starts again); how many went."""
        ...

    def list_trigger_objects(self, name: str | None = None, *, outcome: FireOutcome | None = None,
                             limit: int = 50) -> list[TriggerObject]:
        """Objects matching the filters, newest first."""
        ...
