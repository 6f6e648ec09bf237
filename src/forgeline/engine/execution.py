"""PipelineExecution: a handle on a stored execution that any process can open, watch and stop."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from forgeline.config import Settings
from forgeline.engine.end_notice import EndNotice
from forgeline.engine.liveness import OrchestratorLiveness, check_orchestrator
from forgeline.errors import ForgelineError, OrchestratorLostError
from forgeline.store.metadata.execution_record import ExecutionRecord, ExecutionStatus, StepStatus

if TYPE_CHECKING:
    from forgeline.engine.runtime import Runtime
    from forgeline.store.metadata.protocol import MetadataStore
    from forgeline.store.metadata.records import StepAttempt, StepEvent, StepRun

BRISK_POLL_SECONDS = 0.02
BRISK_POLL_WINDOW_SECONDS = 1.0
"""wait() polls at least every BRISK_POLL_SECONDS during an execution's first second (one read each time)."""


class PipelineExecution:
    """One execution of a pipeline; every property reads the metadata store afresh."""

    def __init__(self, execution_id: str, runtime: Runtime, end_notice: EndNotice | None = None) -> None:
        self._runtime: Runtime | None = runtime
        self.settings: Settings = runtime.settings
        self.id = runtime.store.get_execution(execution_id).id
        self._end_notice = end_notice

    @classmethod
    def get(cls, execution_id: str, settings: Settings | None = None) -> PipelineExecution:
        """Open an existing execution by id (or unique id prefix)."""
        from forgeline.engine.runtime import Runtime

        return cls(execution_id, Runtime.at_edge(settings))

    @classmethod
    def started(cls, execution_id: str, settings: Settings, end_notice: EndNotice | None = None) -> PipelineExecution:
        """The handle of an execution just started for this process (its exact id), whose stores open on first use.

        Until then, on a SQLite store, ``wait()`` and ``status`` read the execution with the standard library's
        sqlite3: a process that only starts a pipeline and waits for it never imports SQLAlchemy.
        """
        handle = cls.__new__(cls)
        handle._runtime = None
        handle.settings = settings
        handle.id = execution_id
        handle._end_notice = end_notice
        return handle

    @property
    def runtime(self) -> Runtime:
        """The stores and executor this handle reads through (built on first use for a ``started`` handle)."""
        if self._runtime is None:
            from forgeline.engine.runtime import Runtime

            self._runtime = Runtime.at_edge(self.settings)
        return self._runtime

    @property
    def store(self) -> MetadataStore:
        """The metadata store this handle reads."""
        return self.runtime.store

    def record(self) -> ExecutionRecord:
        """The execution as currently stored."""
        if self._runtime is None:
            from forgeline.store.metadata.sqlite_execution_list import read_sqlite_execution

            found = read_sqlite_execution(self.settings.database_url, self.id)
            if found is not None:
                return found
        return self.store.get_execution(self.id)

    @property
    def status(self) -> ExecutionStatus:
        """Executing, Stopping, Stopped, Failed or Succeeded; OrchestratorLostError rather than Executing forever.

        With ``Settings.auto_resume`` a lost execution is resumed instead; ``record().status`` is the stored
        value, unchecked.
        """
        record = self.record()
        if not record.status.is_terminal:
            self.ensure_running(record)
        return record.status

    @property
    def failure_reason(self) -> str | None:
        """Why the execution failed (the FailStep's message, or the failed steps' reasons)."""
        return self.record().failure_reason

    @property
    def pipeline_name(self) -> str:
        """Name of the pipeline this execution runs."""
        return self.record().pipeline_name

    @property
    def parameters(self) -> dict[str, Any]:
        """The resolved parameter values of this execution."""
        return self.record().parameters

    def orchestrator(self) -> OrchestratorLiveness:
        """Whether the orchestrator of this execution is alive or lost (see engine/liveness.py)."""
        return check_orchestrator(self.record(), self.settings, self.store)

    def wait(self, timeout: float | None = None, poll_interval: float = 0.1) -> ExecutionStatus:
        """Block until the execution is Stopped, Failed or Succeeded; TimeoutError after ``timeout`` s.

        OrchestratorLostError when its orchestrator died, unless ``Settings.auto_resume`` lets this resume it.
        """
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        delay = 0.005
        while True:
            record = self.record()
            status = record.status
            if status.is_terminal:
                if self._end_notice is not None:
                    self._end_notice.close()
                return status
            self.ensure_running(record)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise TimeoutError(f"execution {self.id} still {status.value} after {timeout} s")
            if self._end_notice is not None and self._end_notice.open:
                # the orchestrator wakes this at its end; the store is still read at poll_interval for liveness
                self._end_notice.wait(poll_interval if deadline is None else min(poll_interval, deadline - now))
                continue
            time.sleep(delay)
            # Short executions are common: polling often at first keeps wait() from oversleeping their end.
            brisk = now - started < BRISK_POLL_WINDOW_SECONDS
            delay = min(delay * 1.5, poll_interval, BRISK_POLL_SECONDS if brisk else poll_interval)

    def ensure_running(self, record: ExecutionRecord | None = None) -> None:
        """OrchestratorLostError if the orchestrator of this unfinished execution is lost; auto-resume resumes it."""
        record = record or self.record()
        liveness = check_orchestrator(record, self.settings)
        if liveness.lost:  # confirmed against the store, as check_orchestrator does with one
            liveness = check_orchestrator(record, self.settings, self.store)
        if not liveness.lost:
            return
        from forgeline.engine.recovery import resume_if_lost  # recovery builds on this module

        if not resume_if_lost(self.store, record, self.settings):
            if self.settings.auto_resume and not self.orchestrator().lost:
                return  # another command resumed it meanwhile
            raise OrchestratorLostError(
                f"execution {self.id} is {record.status.value} but its orchestrator was lost "
                f"{liveness.silent_seconds:.0f} s ago; resume it with `forgeline executions resume {self.id}` "
                "(or set FORGELINE_AUTO_RESUME=1)")

    def stop(self) -> ExecutionStatus:
        """Ask the orchestrator to stop running jobs and start no new step (Executing → Stopping)."""
        return self.store.request_stop(self.id).status

    def list_steps(self) -> list[StepRun]:
        """Every step of the execution with status, times, attempts, outputs and properties."""
        return self.store.list_step_runs(self.id)

    def list_attempts(self, step_name: str | None = None) -> list[StepAttempt]:
        """Every recorded attempt, optionally of one step."""
        return self.store.list_attempts(self.id, step_name)

    def events(self, after: int | None = None) -> list[StepEvent]:
        """The execution's step events in order, only those after cursor ``after`` (an event's ``id``) when given."""
        return self.store.events(self.id, after=after)

    def describe(self) -> dict[str, Any]:
        """The execution and its steps as a plain dict."""
        record = self.record()
        return {
            "id": record.id, "pipeline": record.pipeline_name, "pipeline_version": record.pipeline_version,
            "status": record.status.value, "parameters": record.parameters,
            "created_at": record.created_at, "started_at": record.started_at, "ended_at": record.ended_at,
            "failure_reason": record.failure_reason,
            "orchestrator_lost": check_orchestrator(record, self.settings, self.store).note or None,
            "steps": [step.__dict__ for step in self.list_steps()],
        }

    def result(self, step_name: str) -> Any:
        """The return value of a finished ``@step`` call of this execution (SageMaker's ``result``)."""
        run = self.store.get_step_run(self.id, step_name)
        if run.status != StepStatus.SUCCEEDED:
            raise ForgelineError(f"step {step_name!r} of execution {self.id} is {run.status.value}; "
                                 "only a step that succeeded has a result")
        if "Return" in run.properties:
            return run.properties["Return"]
        if "ReturnUri" not in run.properties:
            raise ForgelineError(f"step {step_name!r} is not a @step function, so it has no return value; "
                                 "read its outputs and properties with list_steps()")
        body = self.runtime.artifacts.read_bytes(run.properties["ReturnUri"])
        from forgeline.jobs.function_loading import FunctionLoader

        return FunctionLoader().loads(body)  # finds classes defined in user files, as a run does

    def __repr__(self) -> str:
        return f"PipelineExecution(id={self.id!r})"
