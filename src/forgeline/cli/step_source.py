"""Where a step's logs and metrics live: its own execution, or for a cache hit the execution that ran it."""

from __future__ import annotations

from rich.console import Console

from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepRun

MAX_HOPS = 50
"""A cache hit may come from an execution whose step was itself reused; follow at most this many."""


def ran_in(store: MetadataStore, run: StepRun) -> StepRun:
    """The run that actually executed this step: the step itself, or the source of its cache hit."""
    seen = {run.execution_id}
    for _ in range(MAX_HOPS):
        if not (run.cache_hit and run.cache_source) or run.cache_source in seen:
            return run
        seen.add(run.cache_source)
        run = store.get_step_run(store.get_execution(run.cache_source).id, run.name)
    return run


def announce_source(err: Console, asked: StepRun, source: StepRun, what: str) -> None:
    """Say on stderr (stdout stays the data) that a cache hit's ``what`` come from another execution."""
    if source.execution_id != asked.execution_id:
        err.print(f"step {asked.name} of execution {asked.execution_id} was a cache hit: showing the {what} "
                  f"of execution {source.execution_id}", highlight=False, soft_wrap=True)
