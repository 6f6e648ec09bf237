"""ExecutionState: the orchestrator's view of one execution, shared by the parts that drive it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from forgeline.engine.resolve import ResolutionContext
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepStatus
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.steps import Step


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


class ExecutionState:
    """Each step's status, the step graph (ForEach iterations included) and what expressions can see."""

    def __init__(self, store: MetadataStore, execution_id: str, pipeline: Pipeline,
                 resolution: ResolutionContext) -> None:
        self.store = store
        self.id = execution_id
        self.pipeline_name = pipeline.name
        self.steps: dict[str, Step] = {s.name: s for s in pipeline.steps}
        self.graph: StepGraph = pipeline.graph
        self.status: dict[str, StepStatus] = {}
        self.resolution = resolution

    def set(self, name: str, status: StepStatus, **fields: Any) -> None:
        """Move a step to ``status`` in memory and in the store (a terminal status also sets ended_at)."""
        self.status[name] = status
        if status.is_terminal:
            fields.setdefault("ended_at", now())
        self.store.update_step_run(self.id, name, status=status, **fields)

    def add_steps(self, steps: Sequence[Step]) -> None:
        """Add steps made at run time (a ForEach's iterations) to the graph, and to the store where new."""
        for step in steps:
            self.steps[step.name] = step
            self.status.setdefault(step.name, StepStatus.PENDING)
        self.store.add_step_runs(self.id, [(s.name, s.step_type) for s in steps])
        self.graph = StepGraph.build(list(self.steps.values()))
