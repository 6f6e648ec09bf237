"""Settling the attempts a dead orchestrator left open, when a new orchestrator takes its execution over.

Each open attempt goes to the executor's ``recover``: a job that ended while no orchestrator watched it is
adopted (its result counts as if it had been watched); a job still running is ended by the executor and its
attempt recorded as Failed with kind Interrupted; the step then runs again from a fresh attempt. Running it
again, rather than waiting for the orphan, keeps a resumed execution independent of jobs nobody can stop or
time out any more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from forgeline.executors.base import Executor
from forgeline.jobs.process import note_in_log
from forgeline.jobs.spec import JobResult, JobSpec
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepStatus

log = logging.getLogger("forgeline.orchestrator")

ORPHAN_REASON = "the orchestrator died during this attempt; the job was still running and was ended"


@dataclass(frozen=True)
class AdoptedJob:
    """An attempt whose job finished while its orchestrator was dead, with the result collected now."""

    step_name: str
    attempt: int
    spec: JobSpec
    result: JobResult


def settle_open_attempts(store: MetadataStore, execution_id: str, executor: Executor,
                         spec_of: Callable[[str, int], JobSpec | None]) -> list[AdoptedJob]:
    """Adopt the open attempts whose job finished; have the executor end the others, recorded as interrupted."""
    adopted = []
    for attempt in store.list_attempts(execution_id):
        if attempt.status.is_terminal:
            continue
        spec = spec_of(attempt.step_name, attempt.attempt)
        result = executor.recover(spec) if spec is not None else None
        if spec is not None and result is not None:
            log.info("adopted %s attempt %s: it ended (%s) while no orchestrator watched it",
                     attempt.step_name, attempt.attempt, result.status.value)
            note_in_log(attempt.log_path or executor.log_location(spec),
                        "the job ended while its orchestrator was gone; its result was adopted")
            adopted.append(AdoptedJob(attempt.step_name, attempt.attempt, spec, result))
            continue
        store.finish_attempt(execution_id, attempt.step_name, attempt.attempt, status=StepStatus.FAILED,
                             failure_kind="Interrupted", failure_reason=ORPHAN_REASON)
    return adopted
