"""AttemptLedger: each step's current attempt, the attempts of this round and spot restarts."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepEventDraft, StepEventKind, StepRun, StepStatus


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

    def start(self, step_name: str, log_path: str) -> int:
        """Open the step's next attempt in the store and make it the current one."""
        attempt = self.store.start_attempt(self.execution_id, step_name, log_path=log_path).attempt
        self.current[step_name] = attempt
        self.store.append_events([
            StepEventDraft(self.execution_id, StepEventKind.ATTEMPT, step_name, attempt, StepStatus.EXECUTING.value),
            StepEventDraft(self.execution_id, StepEventKind.LOG, step_name, attempt, payload={"path": log_path}),
        ])
        return attempt

    def round_attempt(self, step_name: str) -> int:
        """The step's current attempt counted within this round (what retry policies limit)."""
        return self.latest(step_name) - self.round_base.get(step_name, 0)

    def restart_recorder(self, step_name: str, log_path: str) -> Callable[[str], None]:
        """Record a spot restart: the current attempt ends Interrupted (why), the restart is the next attempt."""
        def record(reason: str) -> None:
            self.store.finish_attempt(self.execution_id, step_name, self.latest(step_name),
                                      status=StepStatus.INTERRUPTED, failure_kind="Interrupted",
                                      failure_reason=reason)
            self.store.append_events([StepEventDraft(
                self.execution_id, StepEventKind.ATTEMPT, step_name, self.latest(step_name),
                StepStatus.INTERRUPTED.value, {"failure_kind": "Interrupted", "failure_reason": reason})])
            self.start(step_name, log_path)
            self.round_base[step_name] = self.round_base.get(step_name, 0) + 1  # restarts spend no retries
        return record
