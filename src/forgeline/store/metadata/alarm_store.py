"""AlarmStore: the part of the metadata store alarms use (alarms, the event outbox, deliveries and their history)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

SETTLE_SECONDS = 5.0
"""How old a source row must be before the alarms read it where ids may commit out of order (not SQLite)."""


class AlarmEventKind(StrEnum):
    """What an alarm can subscribe to; each value is what users type after ``--on``."""

    EXECUTION_STARTED = "execution.started"
    EXECUTION_SUCCEEDED = "execution.succeeded"
    EXECUTION_FAILED = "execution.failed"
    EXECUTION_STOPPED = "execution.stopped"
    STEP_FAILED = "step.failed"
    MODEL_REGISTERED = "model.registered"
    MODEL_APPROVED = "model.approved"
    MODEL_REJECTED = "model.rejected"
    TRIGGER_REJECTED = "trigger.rejected"
    METRIC = "metric"


class DeliveryStatus(StrEnum):
    """Where one delivery of one event to one target stands."""

    PENDING = "pending"  # waiting for its first try or, after a failed one, for its next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # every try failed; last_error says why
    DROPPED = "dropped"  # never sent: its alarm was paused or deleted first; last_error says which


@dataclass(frozen=True)
class AlarmDraft:
    """An alarm as a user defines it: the events it listens to, optional filters, and where it sends them."""

    name: str
    events: list[str]
    targets: list[str]
    pipeline_name: str | None = None
    group_name: str | None = None
    condition: str | None = None


@dataclass(frozen=True)
class AlarmRecord:
    """A stored alarm."""

    name: str
    events: list[str]
    targets: list[str]
    paused: bool
    created_at: datetime
    updated_at: datetime
    pipeline_name: str | None = None
    group_name: str | None = None
    condition: str | None = None


@dataclass(frozen=True)
class AlarmEventDraft:
    """An event about to enter the outbox; the store gives it its id and time."""

    kind: str
    subject: str | None = None  # what it is about: an execution id, a model package, a trigger
    payload: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlarmEventRecord:
    """One event in the outbox; ``dispatched`` once it has been matched to alarms."""

    id: int
    kind: str
    subject: str | None
    payload: dict[str, Any]
    dispatched: bool
    created_at: datetime


@dataclass(frozen=True)
class AlarmDelivery:
    """One event sent (or to be sent) to one target of one alarm, with every try's outcome so far."""

    id: int
    alarm_name: str
    event_id: int
    target: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None
    event_kind: str | None = None
    event_subject: str | None = None


@dataclass(frozen=True)
class SourceBatch:
    """Rows of an append-only table read after the alarms' cursor on it: where the cursor was, and the rows."""

    source: str  # the table: step_events or model_package_events
    after: int
    rows: list[dict[str, Any]]

    @property
    def last(self) -> int:
        """The cursor position once these rows are consumed."""
        return max((int(row["id"]) for row in self.rows), default=self.after)


class AlarmStore(Protocol):
    """Alarms, the event outbox and deliveries; each call is one transaction."""

    def create_alarm(self, draft: AlarmDraft) -> AlarmRecord:
        """Store a new alarm; AlarmError when the name is taken."""
        ...

    def get_alarm(self, name: str) -> AlarmRecord:
        """One alarm; AlarmNotFoundError names the ones that exist."""
        ...

    def list_alarms(self) -> list[AlarmRecord]:
        """Every alarm, by name."""
        ...

    def set_alarm_paused(self, name: str, paused: bool) -> AlarmRecord:
        """Pause or resume an alarm; pausing drops its pending deliveries (recorded, never sent); AlarmNotFoundError."""
        ...

    def delete_alarm(self, name: str) -> None:
        """Remove an alarm (its delivery history stays, its pending deliveries dropped); AlarmNotFoundError."""
        ...

    def append_alarm_event(self, draft: AlarmEventDraft) -> AlarmEventRecord:
        """Put one event into the outbox (e.g. trigger.rejected from a trigger watcher)."""
        ...

    def read_source(self, source: str, limit: int, *, settle_seconds: float = SETTLE_SECONDS) -> SourceBatch:
        """Up to ``limit`` rows of ``step_events`` or ``model_package_events`` after the alarms' cursor on it.

        Except on SQLite, only rows written at least ``settle_seconds`` ago, so none committing late is skipped.
        """
        ...

    def import_alarm_events(self, batch: SourceBatch, drafts: list[AlarmEventDraft]) -> bool:
        """Append the drafts and move the cursor past the batch, together; False if the cursor moved meanwhile."""
        ...

    def list_undispatched_alarm_events(self, limit: int) -> list[AlarmEventRecord]:
        """Events not yet matched to alarms, oldest first."""
        ...

    def dispatch_alarm_event(self, event_id: int, deliveries: list[tuple[str, str]]) -> None:
        """One pending delivery per (alarm, target), never twice, none for a paused or gone alarm; event dispatched."""
        ...

    def get_alarm_event(self, event_id: int) -> AlarmEventRecord:
        """One event of the outbox."""
        ...

    def due_alarm_deliveries(self, now: datetime, limit: int) -> list[AlarmDelivery]:
        """Pending deliveries whose next try is due, oldest first."""
        ...

    def get_alarm_delivery(self, delivery_id: int) -> AlarmDelivery:
        """One delivery as it stands now; AlarmError when there is none."""
        ...

    def record_delivery_attempt(self, delivery_id: int, *, error: str | None,
                                next_attempt_at: datetime | None) -> AlarmDelivery:
        """Count a try: no error → delivered; an error → pending again at next_attempt_at, or failed if None."""
        ...

    def collect_alarm_events(self, before: datetime, *, dry_run: bool = False) -> tuple[int, int]:
        """Delete events older than ``before`` that are dispatched and have no pending delivery, with their
        deliveries; (events, deliveries) removed, or that would be in a dry run."""
        ...

    def list_alarm_deliveries(self, limit: int = 50, alarm_name: str | None = None) -> list[AlarmDelivery]:
        """The newest deliveries (of one alarm when given), newest first, with their event's kind and subject."""
        ...
