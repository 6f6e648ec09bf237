"""Processes racing for one execution or for the queue, on a SQLite file and on PostgreSQL: one winner each time."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from forgeline.store.metadata.connection import release_connections
from forgeline.store.metadata.records import ExecutionStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore

from . import concurrency_workers

PROCESSES = 8
QUEUED = 10
MAX_RUNNING = 3
FORK = multiprocessing.get_context("fork")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: Any, tmp_path: Path) -> str:
    """A fresh store URL: a SQLite file, or a PostgreSQL database at schema head."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'forgeline.db'}"
    url: str = request.getfixturevalue("postgres_migrated_database_url")
    return url


def _prepare(database_url: str, executions: dict[str, ExecutionStatus]) -> None:
    store = SqlMetadataStore(database_url)
    version = store.save_pipeline_version("raced", {"steps": ["a"]})
    for execution_id, status in executions.items():
        store.create_execution(execution_id=execution_id, pipeline_name="raced", pipeline_version=version.version,
                               parameters={}, work_dir="/w", steps=[("a", "processing")], status=status)
    store.close()
    release_connections()  # no connection may be shared with the forked workers


def _race(reports: int, target: Callable[..., None], *args: Any) -> list[tuple[str, Any]]:
    """Run target in PROCESSES forked workers at once and collect ``reports`` results."""
    barrier, results = FORK.Barrier(PROCESSES), FORK.Queue()
    workers = [FORK.Process(target=target, args=(args[0], index, barrier, results, *args[1:]))
               for index in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=concurrency_workers.WAIT_SECONDS)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES
    return [results.get(timeout=concurrency_workers.WAIT_SECONDS) for _ in range(reports)]


def test_one_of_many_processes_claiming_one_execution_wins(database_url: str) -> None:
    _prepare(database_url, {"contested": ExecutionStatus.EXECUTING})
    outcomes = _race(PROCESSES, concurrency_workers.claim_one_execution, database_url)
    winners = [(worker, epoch) for worker, epoch in outcomes if epoch is not None]
    assert len(winners) == 1 and winners[0][1] == 1
    store = SqlMetadataStore(database_url)
    record = store.get_execution("contested")
    store.close()
    assert (record.owner, record.epoch) == (winners[0][0], 1)


def test_processes_taking_from_the_queue_at_once_never_exceed_the_limit(database_url: str) -> None:
    _prepare(database_url, {f"queued-{index:02d}": ExecutionStatus.QUEUED for index in range(QUEUED)})
    outcomes = _race(2 * PROCESSES, concurrency_workers.claim_from_the_queue, database_url, MAX_RUNNING)
    claims = [claim for _, claim in outcomes if claim is not None]
    assert sorted(claims) == [(f"queued-{index:02d}", 1) for index in range(MAX_RUNNING)]  # the oldest, once each
    store = SqlMetadataStore(database_url)
    statuses = [store.get_execution(f"queued-{index:02d}").status for index in range(QUEUED)]
    store.close()
    assert statuses == [ExecutionStatus.EXECUTING] * MAX_RUNNING + [ExecutionStatus.QUEUED] * (QUEUED - MAX_RUNNING)
