"""The schedules and triggers half of SqlMetadataStore: cron schedules, their fires, file triggers and objects."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from forgeline.store.metadata import schedules_repository, triggers_repository
from forgeline.store.metadata.schedule_store import FireOutcome, ScheduleDraft, ScheduleFire, ScheduleRecord
from forgeline.store.metadata.transactions import Transactions
from forgeline.store.metadata.trigger_store import ObjectOutcome, TriggerDraft, TriggerObject, TriggerRecord


class SqlScheduleStore:
    """Schedules and file triggers on a SQL database; one transaction per call."""

    _tx: Transactions

    def create_schedule(self, draft: ScheduleDraft) -> ScheduleRecord:
        """Store a new schedule; ScheduleError when the name is taken."""
        stored = replace(draft, parameters=json.loads(json.dumps(draft.parameters)))
        return self._tx.write(lambda connection: schedules_repository.insert_schedule(connection, stored))

    def get_schedule(self, name: str) -> ScheduleRecord:
        """One schedule with its last fire; ScheduleNotFoundError names the ones that exist."""
        return self._tx.read(lambda connection: schedules_repository.load_schedule(connection, name))

    def list_schedules(self) -> list[ScheduleRecord]:
        """Every schedule with its last fire, by name."""
        return self._tx.read(schedules_repository.list_schedules)

    def set_schedule_paused(self, name: str, paused: bool, next_fire_at: datetime | None) -> ScheduleRecord:
        """Pause or resume a schedule; ``next_fire_at`` replaces its next due time."""
        return self._tx.write(lambda connection: schedules_repository.set_paused(
            connection, name, paused, next_fire_at))

    def delete_schedule(self, name: str) -> None:
        """Remove a schedule and its fires; ScheduleNotFoundError when there is none by that name."""
        self._tx.write(lambda connection: schedules_repository.delete_schedule(connection, name))

    def claim_schedule_fire(self, name: str, due_at: datetime, next_fire_at: datetime) -> bool:
        """Record ``due_at`` as fired (pending) and move the schedule on; False when it had fired already."""
        try:
            return self._tx.write(lambda connection: schedules_repository.claim_fire(
                connection, name, due_at, next_fire_at))
        except IntegrityError:  # another process inserted this due time first: it fires, this one does not
            return False

    def skip_schedule_to(self, name: str, next_fire_at: datetime) -> None:
        """Move a schedule's next due time on without firing (missed due times under catch-up none)."""
        self._tx.write(lambda connection: schedules_repository.skip_to(connection, name, next_fire_at))

    def finish_schedule_fire(self, name: str, due_at: datetime, outcome: FireOutcome, *,
                             execution_id: str | None = None, reason: str | None = None) -> None:
        """Record what became of a claimed fire (and the schedule's last execution when one started)."""
        self._tx.write(lambda connection: schedules_repository.finish_fire(
            connection, name, due_at, outcome, execution_id, reason))

    def list_schedule_fires(self, name: str | None = None, *, outcome: FireOutcome | None = None,
                            limit: int = 50) -> list[ScheduleFire]:
        """Fires matching the filters, newest due time first."""
        return self._tx.read(lambda connection: schedules_repository.list_fires(connection, name, outcome, limit))

    def collect_schedule_fires(self, before: datetime, *, dry_run: bool = False) -> int:
        """Delete finished fires due before ``before``, except each schedule's latest; how many (would) go."""
        work = schedules_repository.collect_fires
        if dry_run:
            return self._tx.read(lambda connection: work(connection, before, dry_run=True))
        return self._tx.write(lambda connection: work(connection, before, dry_run=False))

    def create_trigger(self, draft: TriggerDraft) -> TriggerRecord:
        """Store a new trigger; TriggerError when the name is taken."""
        stored = replace(draft, parameters=json.loads(json.dumps(draft.parameters)))
        return self._tx.write(lambda connection: triggers_repository.insert_trigger(connection, stored))

    def get_trigger(self, name: str) -> TriggerRecord:
        """One trigger; TriggerNotFoundError names the ones that exist."""
        return self._tx.read(lambda connection: triggers_repository.load_trigger(connection, name))

    def list_triggers(self) -> list[TriggerRecord]:
        """Every trigger, by name."""
        return self._tx.read(triggers_repository.list_triggers)

    def set_trigger_paused(self, name: str, paused: bool) -> TriggerRecord:
        """Pause or resume a trigger."""
        return self._tx.write(lambda connection: triggers_repository.set_paused(connection, name, paused))

    def delete_trigger(self, name: str) -> None:
        """Remove a trigger and its objects; TriggerNotFoundError when there is none by that name."""
        self._tx.write(lambda connection: triggers_repository.delete_trigger(connection, name))

    def list_trigger_object_versions(self, name: str) -> set[tuple[str, str]]:
        """The (key, version) of every object the trigger saw, whatever became of it."""
        return self._tx.read(lambda connection: triggers_repository.object_versions(connection, name))

    def claim_trigger_object(self, name: str, key: str, version: str) -> TriggerObject | None:
        """Record a new object as pending before anything starts; None when it was seen already."""
        try:
            return self._tx.write(lambda connection: triggers_repository.claim_object(
                connection, name, key, version, FireOutcome.PENDING, None))
        except IntegrityError:  # another process recorded this object first
            return None

    def claim_trigger_objects(self, name: str, items: Sequence[tuple[str, str]]) -> list[TriggerObject]:
        """Record every (key, version) not seen before as pending, together; the rows of those it recorded."""
        try:
            return self._tx.write(lambda connection: triggers_repository.claim_objects(connection, name, items))
        except IntegrityError:  # another process recorded one of them first: claim one by one
            claimed = [self.claim_trigger_object(name, key, version) for key, version in items]
            return [row for row in claimed if row is not None]

    def reject_trigger_object(self, name: str, key: str, version: str, reason: str,
                              alarm_payload: dict[str, Any]) -> bool:
        """Record a new object as rejected and write a trigger.rejected alarm event, together; False when seen."""
        payload = json.loads(json.dumps(alarm_payload))
        try:
            return self._tx.write(lambda connection: triggers_repository.reject_object(
                connection, name, key, version, reason, payload))
        except IntegrityError:
            return False

    def finish_trigger_object(self, object_id: int, outcome: FireOutcome, *, execution_id: str | None = None,
                              reason: str | None = None) -> None:
        """Record what became of a claimed object."""
        self._tx.write(lambda connection: triggers_repository.finish_object(
            connection, object_id, outcome, execution_id, reason))

    def finish_trigger_objects(self, outcomes: Sequence[ObjectOutcome]) -> None:
        """Record what became of several claimed objects, together."""
        self._tx.write(lambda connection: triggers_repository.finish_objects(connection, outcomes))

    def list_old_trigger_objects(self, name: str, before: datetime) -> list[TriggerObject]:
        """The trigger's objects seen before ``before`` whose outcome is final (not pending), oldest first."""
        return self._tx.read(lambda connection: triggers_repository.old_objects(connection, name, before))

    def delete_trigger_objects(self, object_ids: Sequence[int]) -> int:
        """Forget these objects (a listed object not remembered starts again); how many went."""
        return self._tx.write(lambda connection: triggers_repository.delete_objects(connection, object_ids))

    def list_trigger_objects(self, name: str | None = None, *, outcome: FireOutcome | None = None,
                             limit: int = 50) -> list[TriggerObject]:
        """Objects matching the filters, newest first."""
        return self._tx.read(lambda connection: triggers_repository.list_objects(connection, name, outcome, limit))
