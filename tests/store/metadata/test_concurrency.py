"""Many processes on one SQLite file: no 'database is locked', no lost or duplicated rows."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from forgeline.store.metadata.sql_store import SqlMetadataStore

from . import concurrency_workers

PROCESSES = 20


def test_twenty_processes_create_and_update_executions_at_once(tmp_path: Path) -> None:
    database = tmp_path / "new" / "forgeline.db"
    url = f"sqlite:///{database}"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES)
    workers = [
        context.Process(target=concurrency_workers.write_one_execution, args=(url, index, barrier))
        for index in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=concurrency_workers.WAIT_SECONDS)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    store = SqlMetadataStore(url)
    assert [v.version for v in store.list_pipeline_versions("shared")] == [1]
    executions = store.list_executions(limit=100)
    assert sorted(e.id for e in executions) == [f"exec-{index:02d}" for index in range(PROCESSES)]
    for execution in executions:
        runs = store.list_step_runs(execution.id)
        assert [run.name for run in runs] == [f"step-{n}" for n in range(concurrency_workers.STEP_COUNT)]
        assert all(run.properties == {"round": concurrency_workers.UPDATE_ROUNDS - 1} for run in runs)
        assert all(run.attempts == 1 for run in runs)
    store.close()
    with sqlite3.connect(database) as connection:
        counts = [
            connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("executions", "step_runs", "step_attempts", "pipeline_versions", "alembic_version")
        ]
    steps = PROCESSES * concurrency_workers.STEP_COUNT
    assert counts == [PROCESSES, steps, steps, 1, 1]
