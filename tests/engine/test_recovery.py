"""The one answer to "is this execution's orchestrator alive?", the one-winner claim of a lost execution, and the
settings that tune both. Real SQLite stores, real processes; the clock is passed in, never waited on."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from forgeline.config import Settings
from forgeline.engine.liveness import check_orchestrator, heartbeat_interval, process_alive
from forgeline.errors import ConfigurationError
from forgeline.store.metadata.records import ExecutionRecord, ExecutionStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import ExecutionUpdate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def settings_for(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"FORGELINE_HOME": str(tmp_path / "home"), **env})


def record(status: ExecutionStatus = ExecutionStatus.EXECUTING, heartbeat_ago: float | None = 2.0,
           pid: int | None = None) -> ExecutionRecord:
    return ExecutionRecord(
        id="abc123def456", pipeline_name="p", pipeline_version=1, status=status, parameters={}, work_dir="/",
        created_at=NOW - timedelta(minutes=5), started_at=NOW - timedelta(minutes=5),
        heartbeat_at=None if heartbeat_ago is None else NOW - timedelta(seconds=heartbeat_ago),
        orchestrator_pid=pid,
    )


@pytest.fixture
def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_fresh_heartbeat_from_a_live_process_is_alive(tmp_path):
    liveness = check_orchestrator(record(heartbeat_ago=2, pid=os.getpid()), settings_for(tmp_path), now=NOW)
    assert not liveness.lost and liveness.note == "" and liveness.hint == ""


def test_a_stale_heartbeat_is_lost_even_when_the_process_exists(tmp_path):
    liveness = check_orchestrator(record(heartbeat_ago=31, pid=os.getpid()), settings_for(tmp_path), now=NOW)
    assert liveness.lost and round(liveness.silent_seconds) == 31
    assert liveness.note == "orchestrator lost 31 s ago"
    assert liveness.hint == "orchestrator lost 31 s ago — `forgeline executions resume abc123def456`"


def test_on_sqlite_a_dead_process_is_lost_at_once(tmp_path, dead_pid):
    assert not process_alive(dead_pid)
    assert check_orchestrator(record(heartbeat_ago=1, pid=dead_pid), settings_for(tmp_path), now=NOW).lost


def test_with_a_server_database_only_the_heartbeat_counts(tmp_path, dead_pid):
    # the reader may sit on another machine, where the orchestrator's pid means nothing
    server = settings_for(tmp_path, FORGELINE_DATABASE_URL="postgresql+psycopg://u@db.example/forgeline")
    assert not check_orchestrator(record(heartbeat_ago=1, pid=dead_pid), server, now=NOW).lost
    assert check_orchestrator(record(heartbeat_ago=45, pid=dead_pid), server, now=NOW).lost


def test_a_finished_execution_is_never_lost(tmp_path, dead_pid):
    for status in (ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.STOPPED):
        assert not check_orchestrator(record(status, heartbeat_ago=3600, pid=dead_pid), settings_for(tmp_path),
                                      now=NOW).lost


def test_an_orchestrator_that_never_beat_counts_from_the_executions_creation(tmp_path):
    assert check_orchestrator(record(heartbeat_ago=None), settings_for(tmp_path), now=NOW).lost  # 5 min ago
    young = replace(record(heartbeat_ago=None), created_at=NOW - timedelta(seconds=3))
    assert not check_orchestrator(young, settings_for(tmp_path), now=NOW).lost


def test_the_timeout_is_a_setting_and_heartbeats_come_several_times_within_it(tmp_path):
    default = settings_for(tmp_path)
    assert default.orchestrator_timeout_seconds == 30 and heartbeat_interval(default) == 5
    short = settings_for(tmp_path, FORGELINE_ORCHESTRATOR_TIMEOUT="3")
    assert heartbeat_interval(short) == 0.5
    assert check_orchestrator(record(heartbeat_ago=4, pid=os.getpid()), short, now=NOW).lost
    assert Settings.from_env(short.to_env()).orchestrator_timeout_seconds == 3  # the orchestrator sees it too
    with pytest.raises(ConfigurationError, match="FORGELINE_ORCHESTRATOR_TIMEOUT='soon'"):
        settings_for(tmp_path, FORGELINE_ORCHESTRATOR_TIMEOUT="soon")
    with pytest.raises(ConfigurationError, match="positive number of seconds"):
        settings_for(tmp_path, FORGELINE_ORCHESTRATOR_TIMEOUT="0")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("yes", True), ("TRUE", True), ("0", False),
                                                 ("off", False), ("", False)])
def test_auto_resume_is_a_yes_no_setting(tmp_path, value, expected):
    assert settings_for(tmp_path, FORGELINE_AUTO_RESUME=value).auto_resume is expected


def test_a_bad_auto_resume_value_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigurationError, match="FORGELINE_AUTO_RESUME='maybe' is not a yes/no value"):
        settings_for(tmp_path, FORGELINE_AUTO_RESUME="maybe")


@pytest.fixture
def store(tmp_path) -> SqlMetadataStore:
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")
    store.save_pipeline_version("p", {"Version": "2020-12-01", "Steps": []})
    store.create_execution(execution_id="abc123def456", pipeline_name="p", pipeline_version=1, parameters={},
                           work_dir="/", steps=[("A", "Processing")])
    return store


def test_a_lost_execution_is_claimed_by_one_taker_only(store, dead_pid):
    seen = store.update_execution("abc123def456", ExecutionUpdate(orchestrator_pid=dead_pid, heartbeat_at=NOW))
    assert store.claim_lost_execution(seen.id, seen.heartbeat_at)
    assert not store.claim_lost_execution(seen.id, seen.heartbeat_at)  # the second taker saw the old heartbeat
    claimed = store.get_execution(seen.id)
    assert claimed.orchestrator_pid is None and claimed.heartbeat_at > NOW  # alive until the new one records itself


def test_a_finished_execution_cannot_be_claimed(store):
    ended = store.update_execution("abc123def456", ExecutionUpdate(status=ExecutionStatus.FAILED, heartbeat_at=NOW))
    assert not store.claim_lost_execution(ended.id, ended.heartbeat_at)


def test_liveness_confirms_a_loss_against_the_store(store, tmp_path, dead_pid):
    """An orchestrator that finished between a reader's read and its process check is not reported lost."""
    settings = replace(settings_for(tmp_path), database_url=f"sqlite:///{tmp_path / 'forgeline.db'}")
    stale = store.update_execution("abc123def456", ExecutionUpdate(orchestrator_pid=dead_pid,
                                                                    heartbeat_at=datetime.now(UTC)))
    store.update_execution(stale.id, ExecutionUpdate(status=ExecutionStatus.SUCCEEDED))  # what the orchestrator did last
    assert check_orchestrator(stale, settings).lost  # the stale copy alone looks lost...
    assert not check_orchestrator(stale, settings, store).lost  # ...the store says it finished
