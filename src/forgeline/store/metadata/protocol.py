"""MetadataStore: everything the engine and the edges record about pipelines, executions and steps."""

from __future__ import annotations

from typing import Any, Protocol

from forgeline.store.metadata.records import (
    ExecutionRecord,
    PipelineSummary,
    PipelineVersion,
    StepAttempt,
    StepRun,
    StepStatus,
)


class MetadataStore(Protocol):
    """Durable record of pipeline versions, executions, step runs and attempts; each call is one transaction."""

    def save_pipeline_version(self, name: str, definition: dict[str, Any]) -> PipelineVersion:
        """Store the definition as the pipeline's next version, or return the newest if its digest is equal."""
        ...

    def get_pipeline_version(self, name: str, version: int | None = None) -> PipelineVersion:
        """One version of a pipeline (None: the newest); PipelineNotFoundError when absent."""
        ...

    def list_pipeline_versions(self, name: str) -> list[PipelineVersion]:
        """Every version of a pipeline, oldest first; PipelineNotFoundError when it has none."""
        ...

    def list_pipelines(self) -> list[PipelineSummary]:
        """Every pipeline with its newest version and execution count, by name."""
        ...

    def create_execution(
        self,
        *,
        execution_id: str,
        pipeline_name: str,
        pipeline_version: int,
        parameters: dict[str, Any],
        work_dir: str,
        steps: list[tuple[str, str]],
    ) -> ExecutionRecord:
        """Record a new Executing execution and one Pending StepRun per (name, kind), in order."""
        ...

    def get_execution(self, execution_id: str) -> ExecutionRecord:
        """The execution with this id or unique id prefix (4+ characters); ExecutionNotFoundError otherwise."""
        ...

    def list_executions(self, pipeline_name: str | None = None, limit: int = 50) -> list[ExecutionRecord]:
        """Executions, newest first, optionally of one pipeline only."""
        ...

    def update_execution(self, execution_id: str, **fields: Any) -> ExecutionRecord:
        """Set some of status, started_at, ended_at, failure_reason, orchestrator_pid, heartbeat_at."""
        ...

    def request_stop(self, execution_id: str) -> ExecutionRecord:
        """Move an Executing execution to Stopping; any other execution comes back unchanged."""
        ...

    def list_step_runs(self, execution_id: str) -> list[StepRun]:
        """The execution's step runs in the order they were added."""
        ...

    def get_step_run(self, execution_id: str, name: str) -> StepRun:
        """One step run; StepNotFoundError when the execution has no such step."""
        ...

    def update_step_run(self, execution_id: str, name: str, **fields: Any) -> StepRun:
        """Set any StepRun fields except execution_id, name and kind."""
        ...

    def add_step_runs(self, execution_id: str, steps: list[tuple[str, str]]) -> None:
        """Append Pending step runs (e.g. ForEach iterations); names already present are ignored."""
        ...

    def start_attempt(self, execution_id: str, step_name: str, *, log_path: str | None) -> StepAttempt:
        """Open the step's next attempt (Executing) and count it on the StepRun."""
        ...

    def finish_attempt(
        self,
        execution_id: str,
        step_name: str,
        attempt: int,
        *,
        status: StepStatus,
        failure_kind: str | None = None,
        failure_reason: str | None = None,
    ) -> StepAttempt:
        """Close an attempt with its final status and, when it failed, why."""
        ...

    def list_attempts(self, execution_id: str, step_name: str | None = None) -> list[StepAttempt]:
        """Attempts of one step, or of the whole execution, in the order they started."""
        ...
