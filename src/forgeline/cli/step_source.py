"""Where a step's logs and metrics live: its own execution, or for a cache hit the execution that ran it."""

from __future__ import annotations

from rich.console import Console

from forgeline.engine.step_records import ran_in
from forgeline.store.metadata.records import StepRun

__all__ = ["announce_source", "ran_in"]


def announce_source(err: Console, asked: StepRun, source: StepRun, what: str) -> None:
    """Say on stderr (stdout stays the data) that a cache hit's ``what`` come from another execution."""
    if source.execution_id != asked.execution_id:
        err.print(f"step {asked.name} of execution {asked.execution_id} was a cache hit: showing the {what} "
                  f"of execution {source.execution_id}", highlight=False, soft_wrap=True)
