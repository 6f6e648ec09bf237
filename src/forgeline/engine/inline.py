"""Inline steps: steps the orchestrator performs itself (registering a model, …) instead of running a job.

A step kind becomes inline by registering a runner: ``@run_inline.register`` on a function taking the step
and an :class:`InlineContext`. Control steps (Condition, Fail) are handled by the orchestrator directly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any

from forgeline.config import Settings
from forgeline.engine.resolve import ResolutionContext
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ExecutionRecord
from forgeline.workflow.steps import Step


@dataclass(frozen=True)
class InlineContext:
    """What an inline step may use: the execution, the stores, resolved state and settings."""

    execution: ExecutionRecord
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
