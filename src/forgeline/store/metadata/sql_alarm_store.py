"""The alarms part of SqlMetadataStore: alarms, the event outbox, source cursors and deliveries."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime

from sqlalchemy import Connection

from forgeline.store.metadata import alarms_repository
from forgeline.store.metadata.alarm_store import (
    SETTLE_SECONDS,
    AlarmDelivery,
    AlarmDraft,
    AlarmEventDraft,
    AlarmEventRecord,
    AlarmRecord,
    SourceBatch,
)
from forgeline.store.metadata.transactions import Transactions


class SqlAlarmStore:
    """AlarmStore on a SQL database; one transaction per call."""

    _tx: Transactions

    def create_alarm(self, draft: AlarmDraft) -> AlarmRecord:
        """Store a new alarm; AlarmError when the name is taken."""
        return self._tx.write(lambda connection: alarms_repository.insert_alarm(connection, draft))

    def get_alarm(self, name: str) -> AlarmRecord:
        """One alarm; AlarmNotFoundError names the ones that exist."""
        return self._tx.read(lambda connection: alarms_repository.load_alarm(connection, name))

    def list_alarms(self) -> list[AlarmRecord]:
        """Every alarm, by name."""
        return self._tx.read(alarms_repository.list_alarms)

    def set_alarm_paused(self, name: str, paused: bool) -> AlarmRecord:
        """Pause or resume an alarm; pausing drops its pending deliveries (recorded, never sent); AlarmNotFoundError."""
        return self._tx.write(lambda connection: alarms_repository.set_paused(connection, name, paused))

    def delete_alarm(self, name: str) -> None:
        """Remove an alarm (its delivery history stays, its pending deliveries dropped); AlarmNotFoundError."""
        self._tx.write(lambda connection: alarms_repository.delete_alarm(connection, name))

    def append_alarm_event(self, draft: AlarmEventDraft) -> AlarmEventRecord:
        """Put one event into the outbox (e.g. trigger.rejected from a trigger watcher)."""
        stored = _json_ready(draft)

        def work(connection: Connection) -> AlarmEventRecord:
            (event_id,) = alarms_repository.insert_events(connection, [stored])
            return alarms_repository.load_event(connection, event_id)

        return self._tx.write(work)

    def read_source(self, source: str, limit: int, *, settle_seconds: float = SETTLE_SECONDS) -> SourceBatch:
        """Up to ``limit`` rows of ``step_events`` or ``model_package_events`` after the alarms' cursor on it.

        Except on SQLite, only rows written at least ``settle_seconds`` ago, so none committing late is skipped.
        """
        return self._tx.read(lambda connection: alarms_repository.read_source(
            connection, source, limit, settle_seconds))

    def import_alarm_events(self, batch: SourceBatch, drafts: list[AlarmEventDraft]) -> bool:
        """Append the drafts and move the cursor past the batch, together; False if the cursor moved meanwhile."""
        stored = [_json_ready(draft) for draft in drafts]
        return self._tx.write(lambda connection: alarms_repository.import_events(connection, batch, stored))

    def list_undispatched_alarm_events(self, limit: int) -> list[AlarmEventRecord]:
        """Events not yet matched to alarms, oldest first."""
        return self._tx.read(lambda connection: alarms_repository.list_undispatched(connection, limit))

    def dispatch_alarm_event(self, event_id: int, deliveries: list[tuple[str, str]]) -> None:
        """One pending delivery per (alarm, target), never twice, none for a paused or gone alarm; event dispatched."""
        self._tx.write(lambda connection: alarms_repository.dispatch_event(connection, event_id, deliveries))

    def get_alarm_event(self, event_id: int) -> AlarmEventRecord:
        """One event of the outbox."""
        return self._tx.read(lambda connection: alarms_repository.load_event(connection, event_id))

    def due_alarm_deliveries(self, now: datetime, limit: int) -> list[AlarmDelivery]:
        """Pending deliveries whose next try is due, oldest first."""
        return self._tx.read(lambda connection: alarms_repository.due_deliveries(connection, now, limit))

    def get_alarm_delivery(self, delivery_id: int) -> AlarmDelivery:
        """One delivery as it stands now; AlarmError when there is none."""
        return self._tx.read(lambda connection: alarms_repository.load_delivery(connection, delivery_id))

    def record_delivery_attempt(self, delivery_id: int, *, error: str | None,
                                next_attempt_at: datetime | None) -> AlarmDelivery:
        """Count a try: no error → delivered; an error → pending again at next_attempt_at, or failed if None."""
        return self._tx.write(lambda connection: alarms_repository.record_attempt(
            connection, delivery_id, error, next_attempt_at))

    def collect_alarm_events(self, before: datetime, *, dry_run: bool = False) -> tuple[int, int]:
        """Delete events older than ``before`` that are dispatched and have no pending delivery, with their
        deliveries; (events, deliveries) removed, or that would be in a dry run."""
        work = alarms_repository.collect_events
        if dry_run:
            return self._tx.read(lambda connection: work(connection, before, dry_run=True))
        return self._tx.write(lambda connection: work(connection, before, dry_run=False))

    def list_alarm_deliveries(self, limit: int = 50, alarm_name: str | None = None) -> list[AlarmDelivery]:
        """The newest deliveries (of one alarm when given), newest first, with their event's kind and subject."""
        return self._tx.read(lambda connection: alarms_repository.list_deliveries(connection, limit, alarm_name))


def _json_ready(draft: AlarmEventDraft) -> AlarmEventDraft:
    # exactly what the JSON column hands back later (datetimes as text), so no payload fails to store
    return replace(draft, payload=json.loads(json.dumps(draft.payload, default=str)))
