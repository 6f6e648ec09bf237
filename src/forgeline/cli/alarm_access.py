"""Where ``forgeline alarms`` reads and writes: the metadata store directly, or a server (FORGELINE_URL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import quote

from rich.console import Console

from forgeline.alarms.definitions import define_alarm
from forgeline.cli.context import CliContext
from forgeline.cli.output import make_console
from forgeline.cli.remote import RemoteClient, parse, parse_list
from forgeline.config import ServerConnection
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


class ServerAlarms:
    """Alarms on the forgeline server FORGELINE_URL names (admin token to change them)."""

    def __init__(self, client: RemoteClient) -> None:
        """Talk through ``client``."""
        self.client = client
        self.console = make_console()

    def create(self, name: str, events: Sequence[str], targets: Sequence[str], *, pipeline: str | None,
               group: str | None, when: str | None) -> AlarmRecord:
        """The server checks every part and stores the alarm."""
        body = {"name": name, "events": list(events), "targets": list(targets), "pipeline": pipeline,
                "group": group, "when": when}
        return parse(AlarmRecord, self.client.post("/alarms", body))

    def list_alarms(self) -> list[AlarmRecord]:
        """Every alarm, by name."""
        return parse_list(AlarmRecord, self.client.get("/alarms"))

    def get(self, name: str) -> AlarmRecord:
        """One alarm."""
        return parse(AlarmRecord, self.client.get(f"/alarms/{quote(name, safe='')}"))

    def set_paused(self, name: str, paused: bool) -> AlarmRecord:
        """Pause or resume one alarm."""
        action = "pause" if paused else "resume"
        return parse(AlarmRecord, self.client.post(f"/alarms/{quote(name, safe='')}/{action}"))

    def delete(self, name: str) -> None:
        """Delete one alarm."""
        self.client.delete(f"/alarms/{quote(name, safe='')}")

    def history(self, limit: int, alarm: str | None) -> list[AlarmDelivery]:
        """The newest deliveries, newest first."""
        return parse_list(AlarmDelivery, self.client.get("/alarms/history", limit=limit, alarm=alarm))


def open_alarms() -> AlarmAccess:
    """The server's alarms when FORGELINE_URL is set, else the store's."""
    connection = ServerConnection.from_env()
    if connection is not None:
        return ServerAlarms(RemoteClient(connection))
    return StoreAlarms(CliContext())
