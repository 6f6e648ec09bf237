"""ExecutionState: the orchestrator's view of one execution, shared by the parts that drive it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from forgeline.engine.inline import is_inline
from forgeline.engine.resolve import ResolutionContext
from forgeline.engine.scheduler import Scheduler, StepKind
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.steps import ConditionStep, FailStep, ForEach, Step


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


def kind_of(step: Step) -> StepKind:
    """How the orchestrator performs ``step``."""
    if isinstance(step, ConditionStep):
        return StepKind.CONDITION
    if isinstance(step, ForEach):
        return StepKind.FOREACH
    if isinstance(step, FailStep):
        return StepKind.FAIL
    return StepKind.INLINE if is_inline(step) else StepKind.JOB


class ExecutionState:
    """The steps of one execution (ForEach iterations included), their scheduler and what expressions can see."""

    def __init__(self, store: MetadataStore, execution_id: str, pipeline: Pipeline,
                 resolution: ResolutionContext, max_parallel: int) -> None:
        self.store = store
        self.id = execution_id
        self.pipeline_name = pipeline.name
        self.steps: dict[str, Step] = {s.name: s for s in pipeline.steps}
        self.resolution = resolution
        self.scheduler = Scheduler(pipeline.graph, {s.name: kind_of(s) for s in pipeline.steps}, max_parallel,
                                   {s.name: getattr(s, "retry_policies", []) for s in pipeline.steps})

    @property
    def graph(self) -> StepGraph:
        """The step graph, ForEach iterations included."""
        return self.scheduler.graph

    def add_steps(self, steps: Sequence[Step]) -> None:
        """Add steps made at run time (a ForEach's iterations) to the graph, and to the store where new."""
        for step in steps:
            self.steps[step.name] = step
        self.store.add_step_runs(self.id, [(s.name, s.step_type) for s in steps])
        self.scheduler.add_steps(StepGraph.build(list(self.steps.values())), {s.name: kind_of(s) for s in steps},
                                 {s.name: getattr(s, "retry_policies", []) for s in steps})
