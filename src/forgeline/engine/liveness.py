"""Is an execution's orchestrator alive? The one answer that every reader of an execution uses.

An orchestrator writes a heartbeat into its execution's record every few seconds. An unfinished execution
whose heartbeat is older than ``Settings.orchestrator_timeout_seconds`` has lost its orchestrator. On SQLite
every orchestrator of the database runs on this machine, so a recorded process id that no longer exists is
proof as well, without waiting for the timeout; with a server database the reader may sit on another machine,
and only the heartbeat counts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime

from forgeline.config import Settings
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionRecord

MAX_HEARTBEAT_SECONDS = 5.0
HEARTBEATS_PER_TIMEOUT = 6


def heartbeat_interval(settings: Settings) -> float:
    """How often an orchestrator writes its heartbeat: several times within the timeout, at most every 5 s."""
    return min(MAX_HEARTBEAT_SECONDS, settings.orchestrator_timeout_seconds / HEARTBEATS_PER_TIMEOUT)


def process_alive(pid: int | None) -> bool:
    """Whether a process with this id exists (and is not a zombie) on this machine."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


@dataclass(frozen=True)
class OrchestratorLiveness:
    """What a reader knows about an execution's orchestrator."""

    execution_id: str
    lost: bool
    silent_seconds: float  # since its last heartbeat (since the execution was created when it never beat)
    pid: int | None

    @property
    def note(self) -> str:
        """``orchestrator lost 31 s ago`` (empty while it is alive)."""
        return f"orchestrator lost {self.silent_seconds:.0f} s ago" if self.lost else ""

    @property
    def hint(self) -> str:
        """The note with what to do about it."""
        return f"{self.note} — `forgeline executions resume {self.execution_id}`" if self.lost else ""


def check_orchestrator(record: ExecutionRecord, settings: Settings, store: MetadataStore | None = None,
                       now: datetime | None = None) -> OrchestratorLiveness:
    """Whether the orchestrator of ``record`` is lost; a finished execution never is.

    With ``store``, a verdict of lost is confirmed against the execution as stored now: an orchestrator that
    just finished (or a new one that just took over) changed the record before the old process went away.
    """
    liveness = _judge(record, settings, now)
    if not liveness.lost or store is None:
        return liveness
    fresh = store.get_execution(record.id)
    if (fresh.status, fresh.heartbeat_at, fresh.orchestrator_pid) == (
            record.status, record.heartbeat_at, record.orchestrator_pid):
        return liveness
    return _judge(fresh, settings, now)


def _judge(record: ExecutionRecord, settings: Settings, now: datetime | None) -> OrchestratorLiveness:
    last_sign = record.heartbeat_at or record.created_at
    silent = max(0.0, ((now or datetime.now(UTC)) - last_sign).total_seconds())
    if record.status.is_terminal:
        return OrchestratorLiveness(record.id, False, silent, record.orchestrator_pid)
    lost = silent > settings.orchestrator_timeout_seconds or (
        record.orchestrator_pid is not None and runs_on_this_machine(settings)
        and not process_alive(record.orchestrator_pid)
    )
    return OrchestratorLiveness(record.id, lost, silent, record.orchestrator_pid)


def runs_on_this_machine(settings: Settings) -> bool:
    """Whether every orchestrator of this store runs here (a SQLite file cannot be shared between machines)."""
    return settings.database_url.startswith("sqlite")
