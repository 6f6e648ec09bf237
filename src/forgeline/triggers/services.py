"""The schedules and triggers duties a ``forgeline server`` runs, built from its runtime."""

from __future__ import annotations

import os
import socket
import uuid

from forgeline.engine.runtime import Runtime
from forgeline.triggers.clocks import Clock, file_clock, system_clock
from forgeline.triggers.schedule_runner import ScheduleRunner
from forgeline.triggers.starting import QueuedStarter
from forgeline.triggers.trigger_watcher import TriggerWatcher


def server_owner() -> str:
    """A lease holder name unique to this process: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def trigger_services(runtime: Runtime, *, owner: str | None = None,
                     clock: Clock | None = None) -> list[ScheduleRunner | TriggerWatcher]:
    """The schedule runner and the trigger watcher over ``runtime`` (clock: Settings.clock_file, else the system's)."""
    owner = owner or server_owner()
    if clock is None:
        clock = file_clock(runtime.settings.clock_file) if runtime.settings.clock_file else system_clock
    starter = QueuedStarter(runtime)
    return [ScheduleRunner(runtime.store, starter, owner, clock=clock),
            TriggerWatcher(runtime.store, starter, owner, options_by_protocol=runtime.settings.storage_options)]
