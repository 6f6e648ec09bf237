"""ScheduleRunner: the server duty that fires due schedules, once per due time across server processes.

One server process at a time holds the ``schedules`` lease and ticks. A tick fires each unpaused schedule whose
next due time has come: it claims the due time in schedule_fires (its primary key refuses a second claim),
moves the schedule to its next due time, then starts the execution or records why not (overlap skip). A due
time claimed by a process that died before its execution was recorded is finished by the next holder: the
execution it started is found by its started_by, or it is started now, so a fire is never lost nor doubled.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from forgeline.errors import ForgelineError, StaleLeaseError
from forgeline.store.metadata.column_types import utc_now
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.schedule_store import (
    CatchupPolicy,
    FireOutcome,
    OverlapPolicy,
    ScheduleFire,
    ScheduleRecord,
)
from forgeline.triggers.clocks import Clock, system_clock
from forgeline.triggers.cron import CronTimes
from forgeline.triggers.starting import ExecutionStarter

logger = logging.getLogger("forgeline.server")

SCHEDULES_LEASE = "schedules"
DEFAULT_LATE_SECONDS = 60.0
"""A due time later than this when a tick sees it was missed (the server was down): catch-up policy decides."""


@dataclass(frozen=True)
class RunnerTiming:
    """How often the runner ticks, how long its lease lasts, when a due time counts as missed."""

    tick_seconds: float = 1.0
    lease_seconds: float = 15.0
    late_seconds: float = DEFAULT_LATE_SECONDS


class ScheduleRunner:
    """Fires due schedules (a BackgroundService: ``name`` and ``run(stop)``)."""

    name = "schedules"

    def __init__(self, store: MetadataStore, starter: ExecutionStarter, owner: str, *,
                 clock: Clock = system_clock, timing: RunnerTiming | None = None) -> None:
        """Fire schedules in ``store`` as ``owner`` (this process's lease holder name)."""
        self.store = store
        self.starter = starter
        self.owner = owner
        self.clock = clock
        self.timing = timing or RunnerTiming()

    def run(self, stop: threading.Event) -> None:
        """Tick while holding the lease, until ``stop``; give the lease up on the way out.

        Every write of a tick carries the lease's epoch: a process that stalled past its lease while another
        took it over has its next write refused (StaleLeaseError) and acts no more until it holds the lease again.
        """
        while not stop.is_set():
            try:
                epoch = self.store.hold_lease(SCHEDULES_LEASE, self.owner, self.timing.lease_seconds)
                if epoch is not None:
                    with self.store.lease_fence(SCHEDULES_LEASE, epoch):
                        self.tick()
            except ForgelineError as error:  # a store fault: say it and try again next tick
                logger.warning("schedules: %s", error)
            except Exception:  # a fault in one tick must not end the duty: log it and tick again
                logger.exception("schedules: tick failed")
            stop.wait(self.timing.tick_seconds)
        try:
            self.store.release_lease(SCHEDULES_LEASE, self.owner)
        except ForgelineError as error:
            logger.warning("schedules: could not release the lease: %s", error)

    def tick(self) -> list[ScheduleFire]:
        """Finish fires a dead holder left pending, then fire every due schedule; the fires this tick made."""
        now = self.clock()
        # A pending fire younger than a lease may belong to a holder that is still starting its execution: only
        # one older than that was left by a holder that lost its lease (measured on the store's clock).
        abandoned_before = utc_now() - timedelta(seconds=self.timing.lease_seconds)
        for pending in self.store.list_schedule_fires(outcome=FireOutcome.PENDING, limit=1000):
            if pending.created_at < abandoned_before:
                self._recover(pending)
        fired = []
        for schedule in self.store.list_schedules():
            if schedule.paused or schedule.next_fire_at is None or schedule.next_fire_at > now:
                continue
            fire = self._fire(schedule, now)
            if fire is not None:
                fired.append(fire)
        return fired

    def _fire(self, schedule: ScheduleRecord, now: datetime) -> ScheduleFire | None:
        times = CronTimes(schedule.cron, schedule.timezone)
        due = times.latest_at_or_before(now)
        following = times.next_after(now)
        if schedule.catchup == CatchupPolicy.NONE and now - due > timedelta(seconds=self.timing.late_seconds):
            logger.info("schedule %s: due time %s missed, catch-up none: next at %s", schedule.name,
                        due.isoformat(), following.isoformat())
            self.store.skip_schedule_to(schedule.name, following)
            return None
        if not self.store.claim_schedule_fire(schedule.name, due, following):
            return None  # another server process fired this due time
        return self._start(schedule, due)

    def _start(self, schedule: ScheduleRecord, due: datetime) -> ScheduleFire:
        outcome, execution_id, reason = FireOutcome.STARTED, None, None
        running = self._still_running(schedule.last_execution_id)
        if schedule.overlap == OverlapPolicy.SKIP and running is not None:
            outcome, reason = FireOutcome.SKIPPED, (f"previous execution {schedule.last_execution_id} is still "
                                                    f"{running} (overlap skip)")
        else:
            try:
                execution_id = self.starter.start(schedule.pipeline, schedule.parameters,
                                                  _started_by(schedule.name, due))
            except StaleLeaseError:
                raise  # another process holds the duty now: this one records nothing
            except ForgelineError as error:
                outcome, reason = FireOutcome.FAILED, str(error)
        self.store.finish_schedule_fire(schedule.name, due, outcome, execution_id=execution_id, reason=reason)
        logger.info("schedule %s fired for %s: %s %s", schedule.name, due.isoformat(), outcome.value,
                    execution_id or reason or "")
        return ScheduleFire(schedule.name, due, outcome, self.clock(), execution_id, reason)

    def _still_running(self, execution_id: str | None) -> str | None:
        if execution_id is None:
            return None
        try:
            status = self.starter.status(execution_id)
        except ForgelineError:  # deleted by gc: nothing runs
            return None
        return None if status.is_terminal else status.value

    def _recover(self, pending: ScheduleFire) -> None:
        try:
            schedule = self.store.get_schedule(pending.schedule_name)
        except ForgelineError:
            return
        since = pending.created_at - timedelta(seconds=1)
        found = self.starter.find_started(schedule.pipeline, since, _started_by(schedule.name, pending.due_at))
        if found is not None:
            self.store.finish_schedule_fire(schedule.name, pending.due_at, FireOutcome.STARTED, execution_id=found)
            return
        self._start(schedule, pending.due_at)


def _started_by(name: str, due: datetime) -> dict[str, str]:
    return {"kind": "schedule", "name": name, "due_at": due.astimezone(UTC).isoformat()}
