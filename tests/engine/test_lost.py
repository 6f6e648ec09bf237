"""Lost executions without processes: which are lost, one claimant wins, and ending one settles every record.

A real SQLite store; the orchestrator's death is a dead process id, so SQLite's "dead pid is lost at once" applies.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from forgeline.config import Settings
from forgeline.engine.lost import claim_lost, end_lost_execution, find_lost, job_ref, never_started
from forgeline.engine.ownership import fenced
from forgeline.engine.runtime import Runtime
from forgeline.errors import StaleOwnerError
from forgeline.store.metadata.records import ExecutionStatus, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import ExecutionUpdate, StepRunUpdate


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({"FORGELINE_HOME": str(tmp_path / "home")})


@pytest.fixture
def store(settings: Settings):
    store = SqlMetadataStore(settings.database_url)
    yield store
    store.close()


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def running(store: SqlMetadataStore, execution_id: str, pid: int | None) -> None:
    """An execution whose orchestrator (``pid``) had started Prep and left Fit pending."""
    store.save_pipeline_version("p", {"steps": []})
    store.create_execution(execution_id=execution_id, pipeline_name="p", pipeline_version=1, parameters={},
                           work_dir="/w", steps=[("Prep", "processing"), ("Fit", "training")])
    store.update_execution(execution_id, ExecutionUpdate(orchestrator_pid=pid))
    store.update_step_run(execution_id, "Prep", StepRunUpdate(status=StepStatus.EXECUTING))
    store.start_attempt(execution_id, "Prep", log_path=None)


def test_only_unfinished_executions_whose_orchestrator_died_are_lost(store, settings, dead_pid):
    running(store, "dead", dead_pid)
    running(store, "alive", None)  # beat a moment ago (created now) and never recorded a pid: not lost yet
    running(store, "ended", dead_pid)
    store.update_execution("ended", ExecutionUpdate(status=ExecutionStatus.SUCCEEDED))

    lost = find_lost(store, settings)

    assert [r.id for r in lost] == ["dead"]
    assert not never_started(lost[0]) and never_started(store.get_execution("alive"))


def test_one_claimant_wins_and_the_lost_orchestrator_is_fenced_off(store, settings, dead_pid):
    running(store, "dead", dead_pid)
    old_epoch = store.claim_execution("dead", "orchestrator", 30)
    [record] = find_lost(store, settings)

    first = claim_lost(store, record, "launcher-a", 30)
    second = claim_lost(store, record, "launcher-b", 30)

    assert first is not None and second is None
    assert store.get_execution("dead").owner == "launcher-a"
    with pytest.raises(StaleOwnerError):
        store.update_execution("dead", ExecutionUpdate(failure_reason="late"), epoch=old_epoch)


def test_ending_a_lost_execution_settles_its_steps_attempts_and_events(store, settings, dead_pid):
    running(store, "dead", dead_pid)
    [record] = find_lost(store, settings)
    epoch = claim_lost(store, record, "launcher", 30)
    assert epoch is not None
    executor = Runtime.build(settings, store=store).executor_factory(1)
    try:
        end_lost_execution(fenced(store, epoch), executor, "dead", ExecutionStatus.FAILED, "orchestrator lost")
    finally:
        executor.shutdown()

    ended = store.get_execution("dead")
    assert (ended.status, ended.failure_reason) == (ExecutionStatus.FAILED, "orchestrator lost")
    steps = {run.name: (run.status, run.failure_reason) for run in store.list_step_runs("dead")}
    assert steps == {"Prep": (StepStatus.FAILED, "orchestrator lost"),
                     "Fit": (StepStatus.SKIPPED, "execution failed before this step started")}
    [attempt] = store.list_attempts("dead")
    assert (attempt.status, attempt.failure_kind) == (StepStatus.FAILED, "Interrupted")
    kinds = [(event.kind.value, event.step_name, event.status) for event in store.events("dead")]
    assert kinds == [("attempt", "Prep", "Failed"), ("step", "Prep", "Failed"), ("step", "Fit", "Skipped"),
                     ("execution", None, "Failed")]
    assert job_ref("dead", "Prep", 1).id == "dead/Prep/1"
