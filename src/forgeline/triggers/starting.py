"""ExecutionStarter: how schedules and triggers start executions of stored pipelines, queued for the launcher."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from forgeline.engine.runtime import Runtime
from forgeline.engine.stored import start_stored
from forgeline.store.metadata.records import ExecutionStatus
from forgeline.store.metadata.schedule_store import StoredPipelineRef
from forgeline.workflow.parameters import resolve_parameter_values
from forgeline.workflow.pipeline import Pipeline


class ExecutionStarter(Protocol):
    """Starts executions of stored pipelines and answers what a schedule or trigger needs to know about them."""

    def check_parameters(self, pipeline: StoredPipelineRef, overrides: Mapping[str, Any]) -> None:
        """ParameterError naming an unknown parameter or a value that does not fit its type."""
        ...

    def start(self, pipeline: StoredPipelineRef, overrides: Mapping[str, Any], started_by: dict[str, Any]) -> str:
        """Start one execution (Queued: the server's launcher runs it) and return its id."""
        ...

    def find_started(self, pipeline: StoredPipelineRef, since: datetime, started_by: dict[str, Any]) -> str | None:
        """The execution created at or after ``since`` whose started_by holds every item of ``started_by``."""
        ...

    def status(self, execution_id: str) -> ExecutionStatus:
        """Where an execution stands now."""
        ...


class QueuedStarter:
    """ExecutionStarter over a runtime: stored definitions and code snapshots, started Queued."""

    def __init__(self, runtime: Runtime) -> None:
        """Start executions in ``runtime``'s store."""
        self.runtime = runtime
        self._pipelines: dict[tuple[str, int | None], Pipeline] = {}  # stored versions never change

    def check_parameters(self, pipeline: StoredPipelineRef, overrides: Mapping[str, Any]) -> None:
        """ParameterError naming an unknown parameter or a value that does not fit its type."""
        resolve_parameter_values(self._definition(pipeline).parameters, overrides)

    def start(self, pipeline: StoredPipelineRef, overrides: Mapping[str, Any], started_by: dict[str, Any]) -> str:
        """Start one execution (Queued: the server's launcher runs it) and return its id."""
        return start_stored(self.runtime, pipeline.pipeline_name, dict(overrides),
                            version=pipeline.pipeline_version, code_snapshot=pipeline.code_snapshot,
                            work_dir=pipeline.work_dir, queued=True, started_by=started_by)

    def find_started(self, pipeline: StoredPipelineRef, since: datetime, started_by: dict[str, Any]) -> str | None:
        """The execution created at or after ``since`` whose started_by holds every item of ``started_by``."""
        for record in self.runtime.store.list_executions(pipeline.pipeline_name, limit=10_000, since=since):
            recorded = record.started_by or {}
            if all(recorded.get(key) == value for key, value in started_by.items()):
                return record.id
        return None

    def status(self, execution_id: str) -> ExecutionStatus:
        """Where an execution stands now."""
        return self.runtime.store.get_execution(execution_id).status

    def _definition(self, pipeline: StoredPipelineRef) -> Pipeline:
        key = (pipeline.pipeline_name, pipeline.pipeline_version)
        if pipeline.pipeline_version is not None and key in self._pipelines:
            return self._pipelines[key]
        stored = self.runtime.store.get_pipeline_version(pipeline.pipeline_name, pipeline.pipeline_version)
        loaded = Pipeline.from_definition(stored.definition)
        self._pipelines[(pipeline.pipeline_name, stored.version)] = loaded
        return loaded

def pinned_pipeline(runtime: Runtime, name: str, version: int | None, parameters: Mapping[str, Any],
                    work_dir: str | None = None) -> StoredPipelineRef:
    """A stored pipeline version (newest when None) with its code snapshot, once ``parameters`` fit it."""
    stored = runtime.store.get_pipeline_version(name, version)
    ref = StoredPipelineRef(name, stored.version, stored.code_snapshot, None, work_dir)
    QueuedStarter(runtime).check_parameters(ref, parameters)
    return ref
