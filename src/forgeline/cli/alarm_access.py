"""Where ``forgeline alarms`` reads and writes: the metadata store directly, or a server (FORGELINE_URL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rich.console import Console

from forgeline.alarms.definitions import define_alarm
from forgeline.cli.context import CliContext
from forgeline.engine.runtime import Runtime
from forgeline.store.metadata.alarm_store import AlarmDelivery, AlarmRecord


class AlarmAccess(Protocol):
    """The alarm operations the commands need, the same against a store or a server."""

    console: Console

    def create(self, name: str, events: Sequence[str], targets: Sequence[str], *, pipeline: str | None,
               group: str | None, when: str | None) -> AlarmRecord:
        """Check and store a new alarm."""
        ...

    def list_alarms(self) -> list[AlarmRecord]:
        """Every alarm, by name."""
        ...

    def get(self, name: str) -> AlarmRecord:
        """One alarm."""
        ...

    def set_paused(self, name: str, paused: bool) -> AlarmRecord:
        """Pause or resume one alarm."""
        ...

    def delete(self, name: str) -> None:
        """Delete one alarm."""
        ...

    def history(self, limit: int, alarm: str | None) -> list[AlarmDelivery]:
        """The newest deliveries, newest first."""
        ...


class StoreAlarms:
    """Alarms in the metadata store the settings name."""

    def __init__(self, ctx: CliContext) -> None:
        """Use the command's context (settings, console, store)."""
        self.ctx = ctx
        self.console = ctx.console

    def create(self, name: str, events: Sequence[str], targets: Sequence[str], *, pipeline: str | None,
               group: str | None, when: str | None) -> AlarmRecord:
        """Check every part first (nothing is stored on a bad one), then store it (creating the store)."""
        draft = define_alarm(name, events, targets, pipeline=pipeline, group=group, when=when)
        return Runtime.build(self.ctx.settings, create=True).store.create_alarm(draft)

    def list_alarms(self) -> list[AlarmRecord]:
        """Every alarm, by name."""
        return self.ctx.store.list_alarms()

    def get(self, name: str) -> AlarmRecord:
        """One alarm."""
        return self.ctx.store.get_alarm(name)

    def set_paused(self, name: str, paused: bool) -> AlarmRecord:
        """Pause or resume one alarm."""
        return self.ctx.store.set_alarm_paused(name, paused)

    def delete(self, name: str) -> None:
        """Delete one alarm."""
        self.ctx.store.delete_alarm(name)

    def history(self, limit: int, alarm: str | None) -> list[AlarmDelivery]:
        """The newest deliveries, newest first."""
        return self.ctx.store.list_alarm_deliveries(limit, alarm)


def open_alarms() -> AlarmAccess:
    """The server's alarms when FORGELINE_URL is set, else the store's."""
    return StoreAlarms(CliContext())
