"""Inline steps: steps the orchestrator performs itself (registering a model, …) instead of running a job.

A step kind becomes inline by registering a runner: ``@run_inline.register`` on a function taking the step
and an :class:`InlineContext`. Control steps (Condition, Fail) are handled by the orchestrator directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

from forgeline.config import Settings
from forgeline.engine.resolve import ResolutionContext
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionRecord
from forgeline.workflow.graph import StepGraph
from forgeline.workflow.steps import Step


@dataclass(frozen=True)
class RunningPipeline:
    """The pipeline as the orchestrator runs it: ForEach bodies expanded into their iterations."""

    name: str
    steps_by_name: Mapping[str, Step]
    graph: StepGraph

    @property
    def steps(self) -> list[Step]:
        """Every step, iterations included."""
        return list(self.steps_by_name.values())

    def step(self, name: str) -> Step:
        """The step called ``name``."""
        return self.steps_by_name[name]


@dataclass(frozen=True)
class InlineContext:
    """What an inline step may use: the execution, the running pipeline, the stores, resolved state, settings."""

    execution: ExecutionRecord
    pipeline: RunningPipeline
    store: MetadataStore
    artifacts: ArtifactStore
    resolution: ResolutionContext
    settings: Settings


@dataclass(frozen=True)
class InlineResult:
    """The outputs and properties an inline step produced."""

    properties: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


@singledispatch
def run_inline(step: Step, ctx: InlineContext) -> InlineResult:
    """Perform an inline step; raise ForgelineError to fail it with that message."""
    raise TypeError(f"step {step.name!r} ({step.step_type}) is not an inline step")


def is_inline(step: Step) -> bool:
    """Whether a runner is registered for this step's kind."""
    return run_inline.dispatch(type(step)) is not run_inline.dispatch(object)
