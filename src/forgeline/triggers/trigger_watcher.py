"""TriggerWatcher: the server duty that starts one execution per new object in each trigger's watched folder.

One server process at a time holds the ``triggers`` lease. Each trigger is listed every poll_seconds; an object
(key and version) not seen before is read: a valid file is recorded pending in trigger_objects (a unique row,
so it is claimed once), then its execution is started Queued and the row records it; an invalid file or an
unknown parameter is recorded rejected together with a ``trigger.rejected`` alarm event, and starts nothing.
A row left pending by a process that died is finished by the next holder: the execution it started is found by
its started_by (which names the row), or it is started now. Nothing starts twice, nothing is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from forgeline.errors import ForgelineError, ParameterError, StaleLeaseError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.schedule_store import FireOutcome
from forgeline.store.metadata.trigger_store import ObjectOutcome, TriggerObject, TriggerRecord
from forgeline.triggers.schedule_runner import RunnerTiming
from forgeline.triggers.starting import ExecutionStarter
from forgeline.triggers.trigger_files import TriggerFileError, read_trigger_parameters
from forgeline.triggers.watched_folders import WatchedFolder, WatchedObject

logger = logging.getLogger("forgeline.server")

TRIGGERS_LEASE = "triggers"
BATCH = 50
"""New objects claimed, started and recorded together (the lease is renewed between batches)."""


class TriggerWatcher:
    """Polls every unpaused trigger's folder (a BackgroundService: ``name`` and ``run(stop)``)."""

    name = "triggers"

    def __init__(self, store: MetadataStore, starter: ExecutionStarter, owner: str, *,
                 options_by_protocol: Mapping[str, Mapping[str, Any]] | None = None,
                 timing: RunnerTiming | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        """Watch the triggers in ``store`` as ``owner``, opening remote folders with ``options_by_protocol``."""
        self.store = store
        self.starter = starter
        self.owner = owner
        self.options_by_protocol = options_by_protocol or {}
        self.timing = timing or RunnerTiming(tick_seconds=0.25)
        self.monotonic = monotonic
        self._polled: dict[str, float] = {}
        self._folders: dict[tuple[str, str], WatchedFolder] = {}
        self._recovered = False  # pending rows are looked for once per taking of the lease
        self._epoch: int | None = None  # the lease's epoch this process last held
        self._stop = threading.Event()

    def run(self, stop: threading.Event) -> None:
        """Poll while holding the lease, until ``stop``; give the lease up on the way out.

        Every write of a tick carries the lease's epoch: a process that stalled past its lease while another
        took it over has its next write refused (StaleLeaseError) and acts no more until it holds the lease again
        (then, as any new holder, it first finishes the rows left pending).
        """
        self._stop = stop  # a long poll ends between two files when the server stops
        while not stop.is_set():
            try:
                epoch = self.store.hold_lease(TRIGGERS_LEASE, self.owner, self.timing.lease_seconds)
                if epoch != self._epoch:  # taken (again), or lost: poll at once, recover first when held
                    self._polled.clear()
                    self._recovered = False
                    self._epoch = epoch
                if epoch is not None:
                    with self.store.lease_fence(TRIGGERS_LEASE, epoch):
                        self.tick()
            except ForgelineError as error:
                logger.warning("triggers: %s", error)
            except Exception:  # a fault in one tick must not end the duty: log it and tick again
                logger.exception("triggers: tick failed")
            stop.wait(self.timing.tick_seconds)
        try:
            self.store.release_lease(TRIGGERS_LEASE, self.owner)
        except ForgelineError as error:
            logger.warning("triggers: could not release the lease: %s", error)

    def tick(self) -> list[TriggerObject]:
        """Finish objects a dead holder left pending (first tick under the lease), then poll each due trigger."""
        if not self._recovered:  # only a previous holder that died can have left rows pending
            for pending in self.store.list_trigger_objects(outcome=FireOutcome.PENDING, limit=10_000):
                self._recover(pending)
            self._recovered = True
        handled: list[TriggerObject] = []
        now = self.monotonic()
        for trigger in self.store.list_triggers():
            if trigger.paused or now - self._polled.get(trigger.name, float("-inf")) < trigger.poll_seconds:
                continue
            self._polled[trigger.name] = now
            try:
                handled.extend(self.poll(trigger))
            except StaleLeaseError:
                raise  # another process holds the duty now: stop here
            except Exception as error:  # one trigger's broken folder must not stop the others
                logger.warning("trigger %s: cannot poll %s: %s: %s", trigger.name, trigger.watch,
                               type(error).__name__, error)
        return handled

    def poll(self, trigger: TriggerRecord) -> list[TriggerObject]:
        """List the trigger's folder once and handle every object it has not seen; their rows.

        New objects go in batches: their rows are claimed together, their executions started one by one, and
        the outcomes recorded together (a batch's rows stay pending meanwhile, which a crash leaves to the
        next holder's recovery).
        """
        folder = self._folder(trigger)
        seen = self.store.list_trigger_object_versions(trigger.name)
        arrived = [item for item in folder.list() if (item.key, item.version) not in seen]
        handled: list[TriggerObject] = []
        for first in range(0, len(arrived), BATCH):
            if self._stop.is_set() or not self.store.acquire_lease(TRIGGERS_LEASE, self.owner,
                                                                   self.timing.lease_seconds):
                break  # stopping, or the lease went to another process: it carries on
            handled.extend(self._handle_batch(trigger, folder, arrived[first:first + BATCH]))
        return handled

    def _handle_batch(self, trigger: TriggerRecord, folder: WatchedFolder,
                      items: list[WatchedObject]) -> list[TriggerObject]:
        handled: list[TriggerObject] = []
        valid: dict[tuple[str, str], tuple[WatchedObject, dict[str, Any]]] = {}
        for item in items:
            checked = self._check(trigger, folder, item)
            if isinstance(checked, TriggerObject):
                handled.append(checked)
            elif checked is not None:
                valid[(item.key, item.version)] = (item, checked)
        claimed = self.store.claim_trigger_objects(trigger.name, list(valid))
        outcomes = []
        for row in claimed:
            item, parameters = valid[(row.key, row.version)]
            outcome = self._launch(trigger, row, item.uri, parameters)
            outcomes.append(outcome)
            handled.append(replace(row, outcome=outcome.outcome, execution_id=outcome.execution_id,
                                   reason=outcome.reason))
        self.store.finish_trigger_objects(outcomes)
        return handled

    def _check(self, trigger: TriggerRecord, folder: WatchedFolder,
               item: WatchedObject) -> dict[str, Any] | TriggerObject | None:
        """The execution's parameters; the rejected row for an invalid file; None to look again later."""
        try:
            parameters = {**trigger.parameters, **read_trigger_parameters(folder.read(item), item.uri)}
            self.starter.check_parameters(trigger.pipeline, parameters)
            return parameters
        except FileNotFoundError:
            return None  # gone between listing and reading
        except TriggerFileError as error:
            if item.fresh:
                return None  # perhaps still being written: look again next poll
            return self._reject(trigger, item, str(error))
        except ParameterError as error:
            return self._reject(trigger, item, f"{item.uri}: {error}")

    def _launch(self, trigger: TriggerRecord, claimed: TriggerObject, uri: str,
                parameters: Mapping[str, Any]) -> ObjectOutcome:
        try:
            execution_id = self.starter.start(trigger.pipeline, parameters, _started_by(trigger.name, uri, claimed))
        except StaleLeaseError:
            raise  # another process holds the duty now: it finishes this row
        except ForgelineError as error:
            logger.warning("trigger %s: %s could not start: %s", trigger.name, uri, error)
            return ObjectOutcome(claimed.id, FireOutcome.FAILED, reason=str(error))
        logger.info("trigger %s: %s started %s", trigger.name, uri, execution_id)
        return ObjectOutcome(claimed.id, FireOutcome.STARTED, execution_id=execution_id)

    def _reject(self, trigger: TriggerRecord, item: WatchedObject, reason: str) -> TriggerObject | None:
        payload = {"trigger": trigger.name, "uri": item.uri, "reason": reason,
                   "pipeline": trigger.pipeline.pipeline_name}
        if not self.store.reject_trigger_object(trigger.name, item.key, item.version, reason, payload):
            return None
        logger.warning("trigger %s: rejected %s", trigger.name, reason)
        rows = self.store.list_trigger_objects(trigger.name, outcome=FireOutcome.REJECTED, limit=1)
        return rows[0] if rows else None

    def _recover(self, pending: TriggerObject) -> None:
        try:
            trigger = self.store.get_trigger(pending.trigger_name)
        except ForgelineError:
            return
        uri = self._folder(trigger).uri_of(pending.key)
        since = pending.seen_at - timedelta(seconds=1)
        found = self.starter.find_started(trigger.pipeline, since, {"kind": "trigger", "object_id": pending.id})
        if found is not None:
            self.store.finish_trigger_object(pending.id, FireOutcome.STARTED, execution_id=found)
            return
        folder = self._folder(trigger)
        try:
            parameters = {**trigger.parameters, **read_trigger_parameters(
                folder.read(WatchedObject(pending.key, pending.version, uri)), uri)}
        except (OSError, TriggerFileError) as error:
            self.store.finish_trigger_object(pending.id, FireOutcome.FAILED, reason=f"{uri}: {error}")
            return
        self.store.finish_trigger_objects([self._launch(trigger, pending, uri, parameters)])

    def _folder(self, trigger: TriggerRecord) -> WatchedFolder:
        key = (trigger.watch, trigger.pattern)
        if key not in self._folders:
            self._folders[key] = WatchedFolder(trigger.watch, trigger.pattern, self.options_by_protocol)
        return self._folders[key]


def _started_by(name: str, uri: str, claimed: TriggerObject) -> dict[str, Any]:
    return {"kind": "trigger", "name": name, "uri": uri, "object_id": claimed.id}
