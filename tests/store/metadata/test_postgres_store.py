"""SqlMetadataStore on a real PostgreSQL server: the contract suite, migrations and many writer processes at once.

The server is the session's throwaway one (``postgres_server`` in tests/conftest.py); every test gets its own
database. Without PostgreSQL installed these tests skip and say why.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

from contracts.metadata_store_contract import MetadataStoreContract
from forgeline.store.metadata import migrate
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.models import ModelApprovalStatus

from . import concurrency_workers

PROCESSES = 8
PACKAGES_PER_PROCESS = 3
# fork: children start in milliseconds; the parent opens no store before forking, so none is shared.
FORK = multiprocessing.get_context("fork")


class TestPostgresMetadataStore(MetadataStoreContract):
    """The shared contract, on a fresh PostgreSQL database per test (a copy of a migrated empty one)."""

    @pytest.fixture
    def store(self, postgres_migrated_database_url: str) -> Iterator[MetadataStore]:
        """A fresh PostgreSQL-backed store."""
        sql_store = SqlMetadataStore(postgres_migrated_database_url)
        yield sql_store
        sql_store.close()


def test_creates_the_schema_at_head_and_reopens_without_alembic(
    postgres_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    SqlMetadataStore(postgres_database_url).close()
    engine = create_engine(postgres_database_url)
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
    engine.dispose()
    assert revision == migrate.HEAD_REVISION
    assert {"pipelines", "pipeline_versions", "executions", "step_runs", "step_attempts"} <= tables
    assert {"cache_entries", "content_index", "metric_points"} <= tables

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("migrations ran on a current database")

    monkeypatch.setattr(migrate, "_upgrade_under_lock", fail)
    SqlMetadataStore(postgres_database_url).close()


def test_processes_create_the_schema_and_write_executions_at_once(postgres_database_url: str) -> None:
    """Several processes open a brand-new database together, save one definition and record executions."""
    _run_at_once(concurrency_workers.write_one_execution, postgres_database_url)

    store = SqlMetadataStore(postgres_database_url)
    try:
        assert [v.version for v in store.list_pipeline_versions("shared")] == [1]
        executions = store.list_executions(limit=100)
        assert sorted(e.id for e in executions) == [f"exec-{index:02d}" for index in range(PROCESSES)]
        for execution in executions:
            runs = store.list_step_runs(execution.id)
            assert [run.name for run in runs] == [f"step-{n}" for n in range(concurrency_workers.STEP_COUNT)]
            assert all(run.properties == {"round": concurrency_workers.UPDATE_ROUNDS - 1} for run in runs)
            assert all(run.attempts == 1 for run in runs)
    finally:
        store.close()
    engine = create_engine(postgres_database_url)
    with engine.connect() as connection:
        counts = [
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("executions", "step_runs", "step_attempts", "pipeline_versions", "alembic_version")
        ]
    engine.dispose()
    steps = PROCESSES * concurrency_workers.STEP_COUNT
    assert counts == [PROCESSES, steps, steps, 1, 1]


def test_processes_registering_into_one_group_at_once_get_versions_one_to_n(postgres_database_url: str) -> None:
    SqlMetadataStore(postgres_database_url).close()  # the race is on the group and version numbers, not migrating
    _run_at_once(_register_packages, postgres_database_url)

    store = SqlMetadataStore(postgres_database_url)
    try:
        packages = store.list_model_packages("shared")
        total = PROCESSES * PACKAGES_PER_PROCESS
        assert sorted(p.version for p in packages) == list(range(1, total + 1))
        assert len({p.model_data for p in packages}) == total
        events = store.list_model_package_events("shared")
        assert sorted(e.version for e in events) == list(range(1, total + 1))
        assert {e.actor for e in events} == {f"worker-{index}" for index in range(PROCESSES)}
    finally:
        store.close()


def _run_at_once(target: Any, database_url: str) -> None:
    """Run target(database_url, index, barrier) in PROCESSES processes; each must exit with 0."""
    barrier = FORK.Barrier(PROCESSES)
    workers = [FORK.Process(target=target, args=(database_url, index, barrier)) for index in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=concurrency_workers.WAIT_SECONDS)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES


def _register_packages(database_url: str, index: int, barrier: Any) -> None:
    store = SqlMetadataStore(database_url)
    barrier.wait(timeout=concurrency_workers.WAIT_SECONDS)
    for n in range(PACKAGES_PER_PROCESS):
        draft = ModelPackageDraft(group="shared", approval_status=ModelApprovalStatus.PENDING_MANUAL_APPROVAL,
                                  model_data=f"/models/{index}-{n}", lineage={"execution_id": f"exec-{index:02d}"})
        store.create_model_package(draft, actor=f"worker-{index}")
    store.close()


def test_processes_saving_different_definitions_at_once_get_versions_one_to_n(postgres_database_url: str) -> None:
    SqlMetadataStore(postgres_database_url).close()
    _run_at_once(_save_definitions, postgres_database_url)

    store = SqlMetadataStore(postgres_database_url)
    try:
        versions = store.list_pipeline_versions("shared")
        total = PROCESSES * PACKAGES_PER_PROCESS
        assert [v.version for v in versions] == list(range(1, total + 1))
        assert len({v.digest for v in versions}) == total
    finally:
        store.close()


def _save_definitions(database_url: str, index: int, barrier: Any) -> None:
    store = SqlMetadataStore(database_url)
    barrier.wait(timeout=concurrency_workers.WAIT_SECONDS)
    for n in range(PACKAGES_PER_PROCESS):
        store.save_pipeline_version("shared", {"steps": [], "writer": index, "round": n})
    store.close()
