"""AlarmDispatcher: the server's background duty that turns events into deliveries and delivers them.

One round: read step events and registry events after the saved cursors and append alarm events to the outbox
(the cursor moves in the same transaction, so a restart neither loses nor repeats one); match undispatched
events to alarms, creating one pending delivery per alarm, event and target (unique in the store); send the
due deliveries, each recorded right after its try: delivered, or pending again after a growing delay, or failed
once the tries are used up. One server process acts at a time: it holds the ``alarms`` lease.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from datetime import datetime, timedelta

import httpx

from forgeline.alarms.conditions import Condition
from forgeline.alarms.delivery import deliver
from forgeline.alarms.mail import SmtpServer
from forgeline.alarms.matching import deliveries_for, metric_conditions
from forgeline.alarms.messages import render_message
from forgeline.alarms.settings import AlarmSettings
from forgeline.alarms.sources import model_event_drafts, step_event_drafts
from forgeline.errors import ForgelineError
from forgeline.store.metadata.alarm_store import (
    AlarmDelivery,
    AlarmEventDraft,
    AlarmRecord,
    DeliveryStatus,
    SourceBatch,
)
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.protocol import MetadataStore

log = logging.getLogger(__name__)

LEASE = "alarms"
LEASE_SECONDS = 30.0
"""How long the dispatching process holds its duty without renewing it (it renews before every delivery)."""
_BATCH = 500


class AlarmDispatcher:
    """The ``alarms`` background service: events → alarm matching → deliveries, with retries and backoff."""

    name = "alarms"

    def __init__(self, store: MetadataStore, settings: AlarmSettings, *, owner: str | None = None) -> None:
        """A dispatcher over ``store``; ``owner`` names this process in the lease (host:pid by default).

        A FORGELINE_SMTP_URL that is not one is refused here, when the server starts, not at the first email.
        """
        if settings.smtp_url is not None:
            SmtpServer.from_url(settings.smtp_url)
        self.store = store
        self.settings = settings
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:alarms"
        self._http = httpx.Client()  # webhooks to one host reuse their connections
        self._lease_renewed = -LEASE_SECONDS

    def run(self, stop: threading.Event) -> None:
        """Dispatch rounds every poll interval while this process holds the lease, until ``stop`` is set."""
        try:
            while not stop.is_set():
                try:
                    epoch = self._hold_lease()
                    if epoch is not None:
                        # every write of the round carries the epoch: stalled past the lease, this process is
                        # refused (StaleLeaseError) once another holds it, and sends no more until it does again
                        with self.store.lease_fence(LEASE, epoch):
                            self.run_once(stop)
                except ForgelineError as error:  # e.g. the store is locked for a while: try again next round
                    log.warning("alarms: %s", error)
                except Exception:
                    log.exception("alarms: unexpected error in a dispatch round")
                stop.wait(self.settings.poll_seconds)
        finally:
            self._http.close()
            try:
                self.store.release_lease(LEASE, self.owner)
            except ForgelineError as error:
                log.warning("alarms: could not release the lease: %s", error)

    def run_once(self, stop: threading.Event | None = None) -> None:
        """One round: import source events, match them to alarms, send what is due."""
        alarms = self.store.list_alarms()
        self.import_events(alarms)
        self.dispatch_events(alarms)
        self.send_due(alarms, stop)

    def import_events(self, alarms: list[AlarmRecord]) -> int:
        """Append outbox events for new step and registry events; how many source rows were read."""
        since = min((alarm.created_at for alarm in alarms), default=None)
        conditions = metric_conditions(alarms)
        read = 0
        for source in ("step_events", "model_package_events"):
            while True:
                batch = self.store.read_source(source, _BATCH)
                if not batch.rows:
                    break
                drafts = self._drafts(batch, since, conditions)
                if not self.store.import_alarm_events(batch, drafts):
                    break  # another process moved the cursor: it imports these
                read += len(batch.rows)
                if len(batch.rows) < _BATCH:
                    break
        return read

    def _drafts(self, batch: SourceBatch, since: datetime | None,
                conditions: list[Condition]) -> list[AlarmEventDraft]:
        # Rows older than every alarm ring none: skipped without reading what they refer to.
        rows = [row for row in batch.rows if since is not None and row["created_at"] >= since]
        if batch.source == "step_events":
            return step_event_drafts(self.store, rows, conditions)
        return model_event_drafts(self.store, rows)

    def dispatch_events(self, alarms: list[AlarmRecord]) -> int:
        """Create the deliveries of every undispatched event; how many events were dispatched."""
        events = self.store.list_undispatched_alarm_events(_BATCH)
        for event in events:
            self.store.dispatch_alarm_event(event.id, deliveries_for(alarms, event))
        return len(events)

    def send_due(self, alarms: list[AlarmRecord], stop: threading.Event | None = None) -> int:
        """Try every due delivery once; how many were tried.

        Each is read again just before its try: one its alarm's pause or deletion dropped meanwhile is not sent.
        """
        by_name = {alarm.name: alarm for alarm in alarms}
        tried = 0
        for due in self.store.due_alarm_deliveries(utc_now(), _BATCH):
            if (stop is not None and stop.is_set()) or not self._keep_lease():
                break
            delivery = self.store.get_alarm_delivery(due.id)
            if delivery.status != DeliveryStatus.PENDING:
                continue
            self._send(delivery, by_name.get(delivery.alarm_name))
            tried += 1
        return tried

    def _send(self, delivery: AlarmDelivery, alarm: AlarmRecord | None) -> None:
        event = self.store.get_alarm_event(delivery.event_id)
        message = render_message(delivery.alarm_name, alarm, event)
        try:
            deliver(delivery.target, message, self.settings, self._http)
            error = None
        except ForgelineError as failure:
            error = str(failure)
        except Exception as failure:  # a fault of ours must not stop every other delivery
            log.exception("alarms: unexpected error delivering %s", delivery.target)
            error = f"unexpected {type(failure).__name__}: {failure}"
        # Recorded at once: a success is never sent twice, a failure is retried from the store after a restart.
        delay = None if error is None else self.settings.retry_delay(delivery.attempts + 1)
        next_at = None if delay is None else utc_now() + timedelta(seconds=delay)
        recorded = self.store.record_delivery_attempt(delivery.id, error=error, next_attempt_at=next_at)
        if error is None:
            log.info("alarms: %s delivered event %s to %s", delivery.alarm_name, event.id, delivery.target)
        else:
            log.warning("alarms: %s could not deliver event %s to %s (try %d, %s): %s", delivery.alarm_name,
                        event.id, delivery.target, recorded.attempts, recorded.status.value, error)

    def _hold_lease(self) -> int | None:
        epoch = self.store.hold_lease(LEASE, self.owner, LEASE_SECONDS)
        if epoch is not None:
            self._lease_renewed = time.monotonic()
        return epoch

    def _keep_lease(self) -> bool:
        """Renew the lease once a third of it has passed: between two renewals fits one try and its timeout."""
        if time.monotonic() - self._lease_renewed < LEASE_SECONDS / 3:
            return True
        return self._hold_lease() is not None
