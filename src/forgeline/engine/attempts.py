"""AttemptLedger: each step's current attempt, the attempts of this round and spot restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from forgeline.engine.transitions import attempt_start_events
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepEventDraft, StepEventKind, StepRun, StepStatus
from forgeline.store.metadata.updates import AttemptClose, AttemptOpen


class AttemptLedger:
    """The attempt numbers of one execution's steps, as the orchestrator and its job threads see them.

    Retry policies count only the attempts of this round: a retried or resumed execution starts a new round,
    and neither an attempt a dead orchestrator left open nor a spot restart spends a retry.
    """

    def __init__(self, store: MetadataStore, execution_id: str, runs: Iterable[StepRun]) -> None:
        self.store = store
        self.execution_id = execution_id
        self.current: dict[str, int] = {}
        self.round_base: dict[str, int] = {}
        for run in runs:
            self.current[run.name] = run.attempts
            self.round_base[run.name] = run.attempts
            if run.status in (StepStatus.EXECUTING, StepStatus.STOPPING):
                self.round_base[run.name] = run.attempts - 1  # the interrupted attempt is not this round's fault

    def latest(self, step_name: str) -> int:
        """The step's newest attempt number (0 before its first)."""
        return self.current.get(step_name, 0)

    def next_attempt(self, step_name: str, log_path: str) -> AttemptOpen:
        """The step's next attempt, to start in the store (see ``started``)."""
        return AttemptOpen(self.latest(step_name) + 1, log_path)

    def started(self, step_name: str, start: AttemptOpen) -> int:
        """Make ``start``, now recorded in the store, the step's current attempt; its number."""
        self.current[step_name] = start.attempt
        return start.attempt

    def round_attempt(self, step_name: str) -> int:
        """The step's current attempt counted within this round (what retry policies limit)."""
        return self.latest(step_name) - self.round_base.get(step_name, 0)

    def restart_recorder(self, step_name: str, log_path: str) -> Callable[[str], None]:
        """Record a spot restart: the current attempt ends Interrupted (why), the restart is the next attempt."""
        def record(reason: str) -> None:
            ended = self.latest(step_name)
            start = self.next_attempt(step_name, log_path)
            self.store.record_step_transition(
                self.execution_id, step_name,
                ended=AttemptClose(ended, StepStatus.INTERRUPTED, "Interrupted", reason), started=start,
                events=[StepEventDraft(self.execution_id, StepEventKind.ATTEMPT, step_name, ended,
                                       StepStatus.INTERRUPTED.value,
                                       {"failure_kind": "Interrupted", "failure_reason": reason}),
                        *attempt_start_events(self.execution_id, step_name, start)])
            self.started(step_name, start)
            self.round_base[step_name] = self.round_base.get(step_name, 0) + 1  # restarts spend no retries
        return record
