"""Scheduler: which steps of an execution to start, skip, retry or end next; a pure state machine, no I/O.

The orchestrator tells it what happened (a step started, a job ended, a stop was asked for, a ForEach expanded)
and asks it what to do next. It never touches the store, a process or the clock: times are passed in, so every
scheduling rule (conditions, ForEach caps, retries, failure propagation, stop, selective runs) can be tested
without running anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from forgeline.engine.foreach import LoopState
from forgeline.store.metadata.records import ExecutionStatus, StepStatus
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.policies import RetryPolicy

BLOCKING = (StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.STOPPED)
"""An upstream step in one of these statuses skips its downstream steps."""


class StepKind(StrEnum):
    """How the orchestrator performs a step: as a job, itself (inline, condition, fail) or by expanding it."""

    JOB = "job"
    INLINE = "inline"
    CONDITION = "condition"
    FAIL = "fail"
    FOREACH = "foreach"


@dataclass(frozen=True)
class Start:
    """Start this step now (its kind says how)."""

    step: str


@dataclass(frozen=True)
class Skip:
    """This step will not run: record it Skipped with ``reason``."""

    step: str
    reason: str


@dataclass(frozen=True)
class EndLoop:
    """Every iteration of this ForEach has ended: Failed naming ``failures``, else Succeeded with its fan-in."""

    step: str
    failures: tuple[str, ...]

    @property
    def status(self) -> StepStatus:
        """The loop's final status."""
        return StepStatus.FAILED if self.failures else StepStatus.SUCCEEDED


Action = Start | Skip | EndLoop


@dataclass(frozen=True)
class Retry:
    """The failed job runs again as a new attempt after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class Settle:
    """The job's step ends with this status."""

    status: StepStatus


Decision = Retry | Settle


@dataclass(frozen=True)
class Verdict:
    """How an execution ended: its status and the steps that failed, in graph order."""

    status: ExecutionStatus
    failed: tuple[str, ...]


@dataclass
class Scheduler:
    """The scheduling state of one execution: each step's status, retries that are due later, loops, stop."""

    graph: StepGraph
    kinds: dict[str, StepKind]
    max_parallel: int
    retry_policies: dict[str, Sequence[RetryPolicy]] = field(default_factory=dict)
    status: dict[str, StepStatus] = field(default_factory=dict)
    stopping: bool = False
    fail_message: str | None = None  # set when a FailStep was reached: nothing new starts
    due: dict[str, float] = field(default_factory=dict)  # step -> time its retry may start
    loops: dict[str, LoopState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.graph.order:
            self.status.setdefault(name, StepStatus.PENDING)

    # --- what happened -------------------------------------------------------------------------------------------

    def mark(self, step: str, status: StepStatus) -> None:
        """Record a step's new status (record_transition calls this for every transition it persists)."""
        self.status[step] = status
        if status != StepStatus.PENDING:
            self.due.pop(step, None)

    def add_steps(self, graph: StepGraph, kinds: Mapping[str, StepKind],
                  retry_policies: Mapping[str, Sequence[RetryPolicy]]) -> None:
        """Take the graph grown by a ForEach's iterations; new steps are Pending."""
        self.graph = graph
        self.kinds.update(kinds)
        self.retry_policies.update(retry_policies)
        for name in graph.order:
            self.status.setdefault(name, StepStatus.PENDING)

    def add_loop(self, loop: LoopState) -> None:
        """Hold a ForEach's iterations to its concurrency cap and end it when they have all ended."""
        self.loops[loop.loop.name] = loop

    def job_ended(self, step: str, status: StepStatus, failure_kind: str | None, round_attempt: int,
                  attempt: int, now: float) -> Decision:
        """A job attempt ended with ``status``: retry it (a policy allows it, no stop) or settle the step.

        ``round_attempt`` counts the attempts of this round (what retry policies limit), ``attempt`` is the
        attempt's number (what back-off grows with); ``now`` is a monotonic time.
        """
        if status == StepStatus.FAILED and not self.stopping:
            policy = next((p for p in self.retry_policies.get(step, ())
                           if p.allows(failure_kind, round_attempt)), None)
            if policy is not None:
                delay = policy.delay_before(attempt + 1)
                self.status[step] = StepStatus.PENDING
                self.due[step] = now + delay
                return Retry(delay)
        self.mark(step, status)
        return Settle(status)

    def count_delay_from(self, step: str, delay: float, now: float) -> None:
        """Start a retry's ``delay`` at ``now`` (once the failed attempt is recorded): the wait is a floor."""
        self.due[step] = now + delay

    def fail(self, message: str) -> None:
        """A FailStep was reached: start nothing more; the execution fails with ``message``."""
        self.fail_message = message

    def request_stop(self) -> list[str]:
        """Stop: start nothing more; the running jobs to stop now (they are marked Stopping)."""
        self.stopping = True
        running = [n for n in self.graph.order if self.status[n] == StepStatus.EXECUTING and self._is_job(n)]
        for name in running:
            self.status[name] = StepStatus.STOPPING
        return running

    # --- what to do ----------------------------------------------------------------------------------------------

    def next_actions(self, now: float) -> list[Action]:
        """Ends of finished loops, skips of blocked steps, then starts of ready steps (marked Executing)."""
        if self.stopping or self.fail_message is not None:
            return []
        actions: list[Action] = [*self._ended_loops(), *self._skips()]
        for name in self.graph.order:
            if not self._ready(name, now):
                continue
            if self._is_job(name) and self.running_jobs() >= self.max_parallel:
                continue
            self.mark(name, StepStatus.EXECUTING)
            actions.append(Start(name))
            if self.kinds[name] == StepKind.FAIL:
                break  # the execution fails: nothing after it starts
        return actions

    def running_jobs(self) -> int:
        """How many steps have a job running (or stopping)."""
        return sum(1 for n, s in self.status.items()
                   if s in (StepStatus.EXECUTING, StepStatus.STOPPING) and self._is_job(n))

    def finished(self) -> bool:
        """Whether the loop may end: no job runs and no retry is due (or none may start any more)."""
        return self.running_jobs() == 0 and (not self.due or self.stopping or self.fail_message is not None)

    def wait_timeout(self, now: float, longest: float) -> float:
        """How long the orchestrator may wait for a job before a retry falls due (at most ``longest``)."""
        if not self.due:
            return longest
        return max(0.0, min(longest, min(self.due.values()) - now))

    def final_actions(self) -> list[Action]:
        """At the end: loops still running end (Stopped or Failed), steps never started are Skipped."""
        actions: list[Action] = []
        for name, loop in self.loops.items():
            if self.status[name] != StepStatus.EXECUTING:
                continue
            if loop.finished(self.status):
                actions.append(self._end_loop(name, loop))
            else:
                ended = StepStatus.STOPPED if self.stopping else StepStatus.FAILED
                self.mark(name, ended)
                actions.append(EndLoop(name, ("the execution ended before every item finished",)))
        why = "stopped" if self.stopping else "failed"
        for name in self.graph.order:
            if self.status[name] == StepStatus.PENDING:
                self.mark(name, StepStatus.SKIPPED)
                actions.append(Skip(name, f"execution {why} before this step started"))
        return actions

    def verdict(self) -> Verdict:
        """The execution's final status once the loop has ended and final_actions were recorded."""
        failed = tuple(n for n in self.graph.order if self.status[n] == StepStatus.FAILED)
        if self.stopping:
            return Verdict(ExecutionStatus.STOPPED, failed)
        if self.fail_message is not None or failed:
            return Verdict(ExecutionStatus.FAILED, failed)
        return Verdict(ExecutionStatus.SUCCEEDED, failed)

    def not_chosen(self, condition: str, outcome: bool, branches: Mapping[bool, Sequence[str]]) -> list[Skip]:
        """A ConditionStep evaluated to ``outcome``: the steps of the other branch still Pending are skipped."""
        skips = []
        for name in branches[not outcome]:
            if self.status.get(name) == StepStatus.PENDING:
                self.mark(name, StepStatus.SKIPPED)
                skips.append(Skip(name, f"not chosen: {condition} evaluated to {str(outcome).lower()}"))
        return skips

    # --- rules ---------------------------------------------------------------------------------------------------

    def _is_job(self, name: str) -> bool:
        return self.kinds.get(name) == StepKind.JOB

    def _ready(self, name: str, now: float) -> bool:
        if self.status[name] != StepStatus.PENDING or self.due.get(name, now) > now:
            return False
        if not all(self.status.get(up) == StepStatus.SUCCEEDED for up in self.graph.upstream[name]):
            return False
        return self._loop_allows(name)

    def _loop_allows(self, name: str) -> bool:
        for loop in self.loops.values():
            iteration = loop.iteration_of(name)
            if iteration is not None:
                return loop.may_start(iteration, self.status)
        return True

    def _skips(self) -> list[Skip]:
        skips: list[Skip] = []
        changed = True
        while changed:
            changed = False
            for name in self.graph.order:
                if self.status[name] != StepStatus.PENDING:
                    continue
                blocked = [up for up in sorted(self.graph.upstream[name]) if self.status.get(up) in BLOCKING]
                if blocked:
                    up = blocked[0]
                    self.mark(name, StepStatus.SKIPPED)
                    skips.append(Skip(name, f"upstream step {up!r} {self.status[up].value.lower()}"))
                    changed = True
        return skips

    def _ended_loops(self) -> list[EndLoop]:
        return [self._end_loop(name, loop) for name, loop in self.loops.items()
                if self.status[name] == StepStatus.EXECUTING and loop.finished(self.status)]

    def _end_loop(self, name: str, loop: LoopState) -> EndLoop:
        end = EndLoop(name, tuple(loop.failures(self.status)))
        self.mark(name, end.status)
        return end
