"""The orchestrator loop: what the scheduler says to start, to the executor; what ends, recorded; until done.

Runs in its own process (``python -m forgeline.engine.orchestrator <execution-id>``) so an execution
outlives the process that started it; all state it needs is read from the metadata store.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from typing import Any

from forgeline.engine import registration  # noqa: F401 - registers RegisterModel's inline runner
from forgeline.engine.adoption import settle_open_attempts
from forgeline.engine.attempts import AttemptLedger
from forgeline.engine.end_notice import send_end_notice
from forgeline.engine.housekeeping import discard_empty_jobs_folder
from forgeline.engine.inline import InlineContext, RunningPipeline, run_inline
from forgeline.engine.job_steps import JobSteps, RunningJob
from forgeline.engine.liveness import TAKEN_OVER_EXIT_CODE, Heartbeat
from forgeline.engine.loops import LoopRunner
from forgeline.engine.ownership import fenced, owner_name
from forgeline.engine.resolve import ResolutionContext, evaluate, render, resolve
from forgeline.engine.runtime import Runtime
from forgeline.engine.scheduler import Action, EndLoop, Skip, StepKind
from forgeline.engine.state import ExecutionState, kind_of, now
from forgeline.engine.transitions import (
    Transition,
    end_execution,
    execution_event,
    property_document,
    record_transition,
)
from forgeline.errors import (
    ConfigurationError,
    ExecutionOwnedError,
    ForgelineError,
    StaleOwnerError,
    StoreReplacedError,
    StoreUnavailableError,
)
from forgeline.executors.base import WarmsWorkers
from forgeline.jobs.function_loading import FunctionLoader
from forgeline.store.metadata.records import ExecutionStatus, StepRun, StepStatus
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.steps import ConditionStep, FailStep, ForEach, FunctionStep, JobStep, Step

log = logging.getLogger("forgeline.orchestrator")

STOP_POLL_SECONDS = 0.1


class Orchestrator:
    """Drives one execution to a terminal status.

    It first claims the execution (ExecutionOwnedError when another orchestrator's lease is live); every write
    it makes then carries the claim's epoch, and it stands down when a newer owner has claimed the execution.
    """

    def __init__(self, execution_id: str, runtime: Runtime, cache_lookups: bool = True,
                 epoch: int | None = None, end_notice_fd: int | None = None) -> None:
        """``epoch``: a claim a launcher made for this orchestrator (a queued execution); else it claims now.

        ``end_notice_fd``: where to tell the process that forked this one that the execution has ended.
        """
        self.runtime = runtime
        self.end_notice_fd = end_notice_fd
        self.settings, self.artifacts = runtime.settings, runtime.artifacts
        if epoch is None:
            epoch = runtime.store.claim_execution(execution_id, owner_name(),
                                                  self.settings.orchestrator_timeout_seconds)
        if epoch is None:
            holder = runtime.store.get_execution(execution_id)
            if holder.status.is_terminal:
                raise ExecutionOwnedError(f"execution {holder.id} already ended ({holder.status.value}); "
                                          "this orchestrator exits")
            raise ExecutionOwnedError(
                f"execution {holder.id} is {holder.status.value} and run by another orchestrator "
                f"({holder.owner or 'starting'}); this one exits")
        self.epoch = epoch
        self.store = store = fenced(runtime.store, epoch)
        self.record = store.get_execution(execution_id)
        self.id = self.record.id
        version = store.get_pipeline_version(self.record.pipeline_name, self.record.pipeline_version)
        self.pipeline = Pipeline.from_definition(version.definition)
        max_parallel = self.pipeline.parallelism_config.max_parallel_steps or os.cpu_count() or 1
        try:
            # a pipeline that names its executor (Pipeline(executor="ray")) overrides the settings' one
            named = () if self.pipeline.executor is None else (self.pipeline.executor,)
            self.executor = runtime.executor_factory(max_parallel, *named)
        except ConfigurationError as exc:  # e.g. an unreachable Ray cluster: the execution fails, saying so
            end_execution(store, self.id, ExecutionStatus.FAILED, str(exc))
            raise
        self.function_loader = FunctionLoader()
        self.resolution = ResolutionContext(
            execution_id=self.id, pipeline_name=self.record.pipeline_name,
            start_datetime=self.record.started_at or self.record.created_at,
            parameters=self.record.parameters, load_return=self._load_return,
            find_latest_approved=store.latest_approved_model_package,
            find_model_package=store.get_model_package,
            trigger_uri=str((self.record.started_by or {}).get("uri") or ""),
        )
        self.state = ExecutionState(store, self.id, self.pipeline, self.resolution, max_parallel)
        self.scheduler = self.state.scheduler
        self.loops = LoopRunner(self.state)
        runs = store.list_step_runs(self.id)
        for run in runs:
            step = self.state.steps.get(run.name)
            if isinstance(step, ForEach) and "items" in run.properties:
                self.loops.restore(step, run.properties["items"])
        for run in runs:
            status = run.status
            if not status.is_terminal:  # a resumed execution keeps what ended, failures included
                status = StepStatus.PENDING
            elif status == StepStatus.FAILED and isinstance(self.state.steps.get(run.name), FailStep):
                self.scheduler.fail(run.failure_reason or f"FailStep {run.name!r} was reached")
            self.scheduler.mark(run.name, status)
            if status == StepStatus.SUCCEEDED:
                self.resolution.step_properties[run.name] = property_document(run.outputs, run.metrics,
                                                                              run.properties)
        self.attempts = AttemptLedger(store, self.id, runs)
        self.jobs = JobSteps(self.state, self.record, self.settings, self.artifacts, self.executor, self.attempts,
                             cache_lookups)
        self.stop_requested = False
        self._last_stop_poll = 0.0
        self.heartbeat = Heartbeat(runtime.store, self.id, self.settings, epoch)
        self.stood_down = False  # another owner took the execution over, or the store failed: nothing recorded
        if isinstance(self.executor, WarmsWorkers):  # what the first jobs need starts while they are prepared
            if self._will_run(runs, cache_lookups, functions=True):
                self.executor.prestart_worker()
            if self._will_run(runs, cache_lookups, functions=False):
                self.executor.prestart_supervisors()

    def _will_run(self, runs: list[StepRun], cache_lookups: bool, functions: bool) -> bool:
        """Whether a job step that has not run yet will surely run its job (no cached result can stand in).

        ``functions``: a @step's (which calls its function in a warm worker), else a script's (which a supervisor
        runs).
        """
        ended = {run.name for run in runs if run.status.is_terminal}
        return any(isinstance(step, JobStep) and kind_of(step) == StepKind.JOB
                   and isinstance(step, FunctionStep) == functions and step.name not in ended
                   and not (cache_lookups and step.cache_config is not None and step.cache_config.enable_caching)
                   for step in self.state.steps.values())

    def _load_return(self, uri: str) -> Any:
        # the loader finds classes defined in user files, which plain pickle cannot import
        return self.function_loader.loads(self.artifacts.read_bytes(uri))

    def run(self) -> ExecutionStatus:
        """Run the loop to the end and record the execution's final status."""
        try:
            self.heartbeat.start()
            self.store.append_events([execution_event(self.id, ExecutionStatus.EXECUTING)])
            for adopted in settle_open_attempts(self.store, self.id, self.executor, self._spec_of):
                step = self.state.steps[adopted.step_name]
                job = RunningJob(step, adopted.spec, None, adopted.attempt,
                                 self.jobs.cache_key(step, adopted.spec))
                self.heartbeat.owned_record()
                self.jobs.conclude(job, adopted.result)
            self._loop()
            return self._finalize()
        except StaleOwnerError as exc:
            return self._stand_down(f"another orchestrator took execution {self.id} over; this one stands down "
                                    f"({exc})")
        except (StoreUnavailableError, StoreReplacedError) as exc:
            return self._stand_down(f"{exc}; this orchestrator stops its jobs and exits — once the store is back, "
                                    f"`forgeline executions resume {self.id}`")
        except Exception as exc:
            log.exception("orchestrator failed")
            self.jobs.stop(self.scheduler.request_stop())
            reason = f"orchestrator error: {type(exc).__name__}: {exc}"
            self._end(ExecutionStatus.FAILED, reason)
            return ExecutionStatus.FAILED
        finally:
            self.heartbeat.stop()
            self.executor.shutdown()  # ends the jobs still running (none once the execution finished)
            self.jobs.discard_succeeded_folders()  # also when it stood down or failed


    def _stand_down(self, message: str) -> ExecutionStatus:
        """Write nothing more: say why in one line; the jobs end as the executor shuts down."""
        log.error("%s", message)
        self.stood_down = True
        return ExecutionStatus.EXECUTING

    def request_stop(self) -> None:
        """Stop from inside the orchestrator process (SIGTERM handler)."""
        self.stop_requested = True

    def _spec_of(self, step_name: str, attempt: int) -> Any:
        step = self.state.steps.get(step_name)
        return None if step is None else self.jobs.spec_of(step, attempt)

    def _loop(self) -> None:
        while True:
            self._poll_stop()
            actions = self.scheduler.next_actions(time.monotonic())
            for action in actions:
                self._perform(action)
            if actions:
                continue
            if self.scheduler.finished():
                break
            timeout = self.scheduler.wait_timeout(time.monotonic(), STOP_POLL_SECONDS)
            if self.jobs.running:
                for ref in self.executor.wait_any(list(self.jobs.running), timeout):
                    self.jobs.finish(ref)  # fenced: a job a newer orchestrator's takeover ended is not recorded
            else:
                time.sleep(timeout)

    def _perform(self, action: Action) -> None:
        if isinstance(action, Skip):
            record_transition(self.state, Transition(action.step, StepStatus.SKIPPED, failure_reason=action.reason))
        elif isinstance(action, EndLoop):
            self.loops.end(action)
        else:
            self._start(self.state.steps[action.step])

    def _start(self, step: Step) -> None:
        kind = self.scheduler.kinds[step.name]
        if kind == StepKind.CONDITION:
            assert isinstance(step, ConditionStep)
            self._run_condition(step)
        elif kind == StepKind.FOREACH:
            assert isinstance(step, ForEach)
            self.loops.start(step)
        elif kind == StepKind.FAIL:
            assert isinstance(step, FailStep)
            self._run_fail(step)
        elif kind == StepKind.INLINE:
            self._run_inline(step)
        else:
            self.jobs.submit(step)

    def _run_condition(self, step: ConditionStep) -> None:
        started = now()
        try:
            outcome = all(evaluate(c, self.resolution) for c in step.conditions)
        except ForgelineError as exc:
            record_transition(self.state, Transition(step.name, StepStatus.FAILED, started_at=started,
                                                     failure_reason=f"condition could not be evaluated: {exc}"))
            return
        record_transition(self.state, Transition(step.name, StepStatus.SUCCEEDED, started_at=started,
                                                 properties={"outcome": outcome}))
        branches = {True: [s.name for s in step.if_steps], False: [s.name for s in step.else_steps]}
        for skip in self.scheduler.not_chosen(step.name, outcome, branches):
            self._perform(skip)

    def _run_fail(self, step: FailStep) -> None:
        started = now()
        try:
            message = render(resolve(step.error_message, self.resolution))
        except ForgelineError as exc:
            message = f"FailStep {step.name!r} message could not be resolved: {exc}"
        message = message or f"FailStep {step.name!r} was reached"
        self.scheduler.fail(message)
        record_transition(self.state, Transition(step.name, StepStatus.FAILED, started_at=started,
                                                 failure_reason=message))

    def _run_inline(self, step: Step) -> None:
        started = now()
        running = RunningPipeline(self.pipeline.name, dict(self.state.steps), self.state.graph)
        ctx = InlineContext(self.store.get_execution(self.id), running, self.store, self.artifacts,
                            self.resolution, self.settings)
        try:
            result = run_inline(step, ctx)
        except ForgelineError as exc:
            record_transition(self.state, Transition(step.name, StepStatus.FAILED, started_at=started,
                                                     failure_reason=str(exc)))
            return
        record_transition(self.state, Transition(step.name, StepStatus.SUCCEEDED, started_at=started,
                                                 outputs=result.outputs, properties=result.properties))

    def _poll_stop(self) -> None:
        if self.scheduler.stopping or time.monotonic() - self._last_stop_poll < STOP_POLL_SECONDS \
                and not self.stop_requested:
            return
        self._last_stop_poll = time.monotonic()
        if self.stop_requested or self.heartbeat.owned_record().status == ExecutionStatus.STOPPING:
            self.jobs.stop(self.scheduler.request_stop())

    def _finalize(self) -> ExecutionStatus:
        self.heartbeat.owned_record()
        for action in self.scheduler.final_actions():
            self._perform(action)
        verdict = self.scheduler.verdict()
        reason: str | None = None
        if verdict.status == ExecutionStatus.FAILED:
            reason = self.scheduler.fail_message
            if reason is None:
                runs = {r.name: r for r in self.store.list_step_runs(self.id)}
                reason = "; ".join(f"step {n!r} failed: {runs[n].failure_reason}" for n in verdict.failed)
        self._end(verdict.status, reason)
        self.jobs.discard_succeeded_folders()
        discard_empty_jobs_folder(self.settings, self.id)
        return verdict.status

    def _end(self, status: ExecutionStatus, reason: str | None) -> None:
        """Record the execution's final status and event, then wake whoever waits for it."""
        end_execution(self.store, self.id, status, reason)
        send_end_notice(self.end_notice_fd)


NO_CACHE_FLAG = "--no-cache"
"""Orchestrator argument: reuse no cached result in this run (results are still recorded)."""
EPOCH_OPTION = "--epoch"
"""Orchestrator argument ``--epoch=N``: continue the claim at epoch N a launcher made, instead of claiming."""


def main(argv: list[str] | None = None, runtime: Runtime | None = None, end_notice_fd: int | None = None) -> int:
    """Entry point of the orchestrator process (``runtime``: built from the environment when not given).

    ``end_notice_fd``: the write end of a forked orchestrator's end notice (see engine/end_notice.py).
    """
    args = sys.argv[1:] if argv is None else argv
    cache_lookups = NO_CACHE_FLAG not in args
    epochs = [arg.removeprefix(f"{EPOCH_OPTION}=") for arg in args if arg.startswith(f"{EPOCH_OPTION}=")]
    args = [arg for arg in args if arg != NO_CACHE_FLAG and not arg.startswith(f"{EPOCH_OPTION}=")]
    if len(args) != 1 or len(epochs) > 1 or not all(epoch.isdigit() for epoch in epochs):
        print(f"usage: python -m forgeline.engine.orchestrator <execution-id> [{NO_CACHE_FLAG}] "
              f"[{EPOCH_OPTION}=N]", file=sys.stderr)
        return 2
    # force: a forked orchestrator must not write into handlers its parent process configured
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    try:
        orchestrator = Orchestrator(args[0], runtime or Runtime.from_env(), cache_lookups=cache_lookups,
                                    epoch=int(epochs[0]) if epochs else None, end_notice_fd=end_notice_fd)
    except ExecutionOwnedError as exc:
        log.error("%s", exc)
        return TAKEN_OVER_EXIT_CODE
    except ConfigurationError as exc:  # recorded as the execution's failure; one line in the log
        log.error("%s", exc)
        return 1
    signal.signal(signal.SIGTERM, lambda *_: orchestrator.request_stop())
    status = orchestrator.run()
    if orchestrator.stood_down:
        return TAKEN_OVER_EXIT_CODE
    return 0 if status == ExecutionStatus.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
