"""Is an execution's orchestrator alive? The one answer every reader uses, and the heartbeat it rests on.

An orchestrator writes a heartbeat into its execution's record every few seconds. An unfinished execution
whose heartbeat is older than ``Settings.orchestrator_timeout_seconds`` has lost its orchestrator. On SQLite
every orchestrator of the database runs on this machine, so a recorded process id that no longer exists is
proof as well, without waiting for the timeout; with a server database the reader may sit on another machine,
and only the heartbeat counts.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from forgeline.config import Settings
from forgeline.errors import StaleOwnerError
from forgeline.store.metadata.execution_record import ExecutionRecord, ExecutionStatus

if TYPE_CHECKING:
    from forgeline.store.metadata.protocol import MetadataStore

MAX_HEARTBEAT_SECONDS = 5.0
HEARTBEATS_PER_TIMEOUT = 6
TAKEN_OVER_EXIT_CODE = 75
"""How an orchestrator exits when another owns its execution (it was thought lost, or two were started)."""


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
    if record.status.is_terminal or record.status == ExecutionStatus.QUEUED:  # a queued one has none yet
        return OrchestratorLiveness(record.id, False, silent, record.orchestrator_pid)
    lost = silent > settings.orchestrator_timeout_seconds or (
        record.orchestrator_pid is not None and runs_on_this_machine(settings)
        and not process_alive(record.orchestrator_pid)
    )
    return OrchestratorLiveness(record.id, lost, silent, record.orchestrator_pid)


def runs_on_this_machine(settings: Settings) -> bool:
    """Whether every orchestrator of this store runs here (a SQLite file cannot be shared between machines)."""
    return settings.database_url.startswith("sqlite")


class Heartbeat:
    """The orchestrator's side: renew its lease from a thread of its own, and notice when another took over.

    A takeover happens when this process was thought lost (stopped, or silent past the timeout) and a resume
    claimed the execution at a newer epoch: from then on only the new orchestrator may write, so this one's
    lease cannot be renewed, its writes are refused, and it stands down (StaleOwnerError).
    """

    def __init__(self, store: MetadataStore, execution_id: str, settings: Settings, epoch: int) -> None:
        self.store = store
        self.execution_id = execution_id
        self.epoch = epoch
        self.lease_seconds = settings.orchestrator_timeout_seconds
        self.interval = heartbeat_interval(settings)
        self._done = threading.Event()
        self._lost = threading.Event()

    def start(self) -> None:
        """Record this process as the execution's orchestrator and start renewing the lease."""
        from forgeline.store.metadata.updates import ExecutionUpdate  # an orchestrator's: not a watcher's import

        self.store.update_execution(self.execution_id,
                                    ExecutionUpdate(orchestrator_pid=os.getpid(), heartbeat_at=datetime.now(UTC)),
                                    epoch=self.epoch)
        # a thread of its own, so a long cache check never makes the orchestrator look dead
        threading.Thread(target=self._beat, name="forgeline-heartbeat", daemon=True).start()

    def stop(self) -> None:
        """Stop beating (the execution has ended)."""
        self._done.set()

    def owned_record(self) -> ExecutionRecord:
        """The execution as stored; StaleOwnerError once another orchestrator has claimed it."""
        record = self.store.get_execution(self.execution_id)
        if self._lost.is_set() or record.epoch != self.epoch:
            raise StaleOwnerError(
                f"execution {self.execution_id} was taken over by {record.owner or 'another orchestrator'} "
                f"(epoch {record.epoch}, this one held {self.epoch})")
        return record

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if not self.store.renew_lease(self.execution_id, self.epoch, self.lease_seconds):
                    self._lost.set()  # the main loop stands down at its next look (owned_record)
                    return
            except Exception:  # noqa: BLE001 - a missed renewal is retried at the next beat
                import logging  # here: a process that only starts and waits (this module) never imports it

                logging.getLogger("forgeline.orchestrator").warning("heartbeat failed", exc_info=True)
