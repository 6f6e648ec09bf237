"""Creating, pausing and resuming schedules and file triggers: every input checked before anything is stored."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from forgeline.errors import ScheduleError, TriggerError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.schedule_store import (
    CatchupPolicy,
    OverlapPolicy,
    ScheduleDraft,
    ScheduleFire,
    ScheduleRecord,
    StoredPipelineRef,
)
from forgeline.store.metadata.trigger_store import TriggerDraft, TriggerObject, TriggerRecord
from forgeline.triggers.cron import CronTimes
from forgeline.triggers.watched_folders import WatchedFolder, normalise_watch

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
MIN_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class ScheduleSpec:
    """What a user asks for when creating a schedule (before the pipeline is stored)."""

    name: str
    cron: str
    timezone: str = "UTC"
    parameters: Mapping[str, Any] | None = None
    catchup: str = CatchupPolicy.LAST.value
    overlap: str = OverlapPolicy.SKIP.value

    def check(self) -> CronTimes:
        """The schedule's due times; ScheduleError naming a bad name, cron, time zone or policy."""
        _check_name(self.name, "schedule", ScheduleError)
        _check_choice(self.catchup, CatchupPolicy, "--catchup", ScheduleError)
        _check_choice(self.overlap, OverlapPolicy, "--overlap", ScheduleError)
        return CronTimes(self.cron, self.timezone)


@dataclass(frozen=True)
class TriggerSpec:
    """What a user asks for when creating a file trigger (before the pipeline is stored)."""

    name: str
    watch: str
    pattern: str = "*"
    poll_seconds: float = 5.0
    parameters: Mapping[str, Any] | None = None

    def check(self, options_by_protocol: Mapping[str, Mapping[str, Any]]) -> str:
        """The stored form of the watch location; TriggerError naming a bad name, URL, pattern or interval."""
        _check_name(self.name, "trigger", TriggerError)
        if not self.pattern or "/" in self.pattern:
            raise TriggerError(f"--pattern {self.pattern!r}: expected a file name pattern such as '*.json'")
        if not self.poll_seconds >= MIN_POLL_SECONDS:
            raise TriggerError(f"--poll-seconds {self.poll_seconds:g}: expected at least {MIN_POLL_SECONDS:g}")
        watch = normalise_watch(self.watch)
        WatchedFolder(watch, self.pattern, options_by_protocol).check()
        return watch


@dataclass(frozen=True)
class ScheduleDescription:
    """A schedule and its latest fires, newest first (what ``schedules describe`` shows)."""

    schedule: ScheduleRecord
    fires: list[ScheduleFire]


@dataclass(frozen=True)
class TriggerDescription:
    """A trigger and the latest objects it saw, newest first (what ``triggers describe`` shows)."""

    trigger: TriggerRecord
    objects: list[TriggerObject]


def describe_schedule(store: MetadataStore, name: str, limit: int = 20) -> ScheduleDescription:
    """A schedule with its ``limit`` latest fires."""
    return ScheduleDescription(store.get_schedule(name), store.list_schedule_fires(name, limit=limit))


def describe_trigger(store: MetadataStore, name: str, limit: int = 20) -> TriggerDescription:
    """A trigger with the ``limit`` latest objects it saw."""
    return TriggerDescription(store.get_trigger(name), store.list_trigger_objects(name, limit=limit))


def create_schedule(store: MetadataStore, spec: ScheduleSpec, pipeline: StoredPipelineRef,
                    now: datetime) -> ScheduleRecord:
    """Store a checked schedule whose first due time is the first after ``now``."""
    times = spec.check()
    return store.create_schedule(ScheduleDraft(
        name=spec.name, pipeline=pipeline, cron=spec.cron, timezone=spec.timezone,
        parameters=dict(spec.parameters or {}), catchup=CatchupPolicy(spec.catchup),
        overlap=OverlapPolicy(spec.overlap), next_fire_at=times.next_after(now)))


def create_trigger(store: MetadataStore, spec: TriggerSpec, pipeline: StoredPipelineRef,
                   options_by_protocol: Mapping[str, Mapping[str, Any]]) -> TriggerRecord:
    """Store a checked trigger."""
    watch = spec.check(options_by_protocol)
    return store.create_trigger(TriggerDraft(
        name=spec.name, pipeline=pipeline, watch=watch, pattern=spec.pattern, poll_seconds=float(spec.poll_seconds),
        parameters=dict(spec.parameters or {})))


def set_schedule_paused(store: MetadataStore, name: str, paused: bool, now: datetime) -> ScheduleRecord:
    """Pause a schedule, or resume it from its first due time after ``now`` (paused time is not caught up)."""
    schedule = store.get_schedule(name)
    next_fire_at = None if paused else CronTimes(schedule.cron, schedule.timezone).next_after(now)
    return store.set_schedule_paused(name, paused, next_fire_at)


def _check_name(name: str, what: str, error: type[Exception]) -> None:
    if not _NAME.match(name):
        raise error(f"{what} name {name!r}: use letters, digits, '-', '_' and '.', starting with a letter or digit")


def _check_choice(value: str, choices: type[CatchupPolicy] | type[OverlapPolicy], option: str,
                  error: type[Exception]) -> None:
    allowed = [choice.value for choice in choices]
    if value not in allowed:
        raise error(f"{option} {value!r}: expected one of {', '.join(allowed)}")
