"""The @step worker of an execution being started, forked from the starting process before its heavy imports.

Light on purpose: ``Pipeline.start()`` imports it before the engine, the stores and SQLAlchemy, so that the
worker is forked from a small process and is ready long before the orchestrator sends its first call.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from forgeline.jobs.function_fork import WORKER_ENV, fork_function_worker, offer, withdraw
from forgeline.workflow.steps import ForEach, FunctionStep, Step

if TYPE_CHECKING:
    from forgeline.config import Settings
    from forgeline.workflow.pipeline import Pipeline


@contextmanager
def step_worker_forked(pipeline: Pipeline, settings: Settings, *, queued: bool = False) -> Iterator[None]:
    """Fork a @step worker now for the orchestrator launched inside the block to adopt (see ``function_fork``).

    Nothing is forked unless ``wants_forked_worker``; nor when forking is unsafe here (other threads, an open
    SQLite database). A worker the orchestrator did not inherit (it was spawned: threads started meanwhile, a
    store it cannot fork with) exits when the block ends; that orchestrator spawns its workers as before.
    """
    worker = fork_function_worker() if wants_forked_worker(pipeline, settings, queued) else None
    if worker is None:
        yield
        return
    offer(worker)
    try:
        yield
    finally:
        withdraw(worker)


def wants_forked_worker(pipeline: Pipeline, settings: Settings, queued: bool = False) -> bool:
    """Whether an orchestrator forked from this process would run ``pipeline``'s @step functions on this machine:
    it has some, starts now (not queued, not from inside a worker), locally, on a SQLite store."""
    return (not queued and not os.environ.get(WORKER_ENV)
            and (pipeline.executor or settings.executor) == "local"
            and settings.database_url.startswith("sqlite:///")
            and any(isinstance(step, FunctionStep) for step in _all_steps(pipeline.steps)))


def _all_steps(steps: list[Step]) -> Iterator[Step]:
    for step in steps:
        yield step
        if isinstance(step, ForEach):
            yield from step.all_body_steps()
