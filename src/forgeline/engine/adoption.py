"""Settling the attempts a dead orchestrator left open, when a new orchestrator takes its execution over.

A job whose script ended while no orchestrator watched it is adopted: its supervisor recorded the exit status
in the job directory, so its outputs are collected and its result counts as if it had been watched. A job still
running is killed (its whole process group) and its attempt recorded as Failed with kind Interrupted; the step
then runs again from a fresh attempt. Running it again, rather than waiting for the orphan, keeps a resumed
execution independent of processes nobody can stop or time out any more.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from forgeline.engine.liveness import process_alive
from forgeline.executors.base import Executor
from forgeline.jobs.process import note_in_log, read_supervisor_pid
from forgeline.jobs.spec import JobResult, JobSpec
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepAttempt, StepStatus

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
    """Adopt the open attempts whose job finished; end the others and record them as interrupted."""
    adopted = []
    for attempt in store.list_attempts(execution_id):
        if attempt.status.is_terminal:
            continue
        spec = spec_of(attempt.step_name, attempt.attempt)
        result = executor.adopt(spec) if spec is not None else None
        if spec is not None and result is not None:
            log.info("adopted %s attempt %s: it ended (%s) while no orchestrator watched it",
                     attempt.step_name, attempt.attempt, result.status.value)
            note_in_log(spec.log_path, "the job ended while its orchestrator was gone; its result was adopted")
            adopted.append(AdoptedJob(attempt.step_name, attempt.attempt, spec, result))
            continue
        end_orphan(attempt, spec)
        store.finish_attempt(execution_id, attempt.step_name, attempt.attempt, status=StepStatus.FAILED,
                             failure_kind="Interrupted", failure_reason=ORPHAN_REASON)
    return adopted


def end_orphan(attempt: StepAttempt, spec: JobSpec | None) -> None:
    """Kill the process group of an attempt's job if it still runs.

    Its group is the recorded pid, or the one its supervisor left in the job folder when the dead
    orchestrator died before recording it.
    """
    pid = attempt.pid or (read_supervisor_pid(Path(spec.job_dir)) if spec is not None else None)
    if pid and process_alive(pid):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
