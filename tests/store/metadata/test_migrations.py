"""The Alembic migrations build exactly the schema tables.py declares, and HEAD_REVISION names their head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, inspect, text

from forgeline.store.metadata.migrate import HEAD_REVISION, alembic_config, current_revision
from forgeline.store.metadata.records import StepEventDraft, StepEventKind, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.tables import metadata_obj


def _differences(url: str, metadata: MetaData) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_migrated_database_matches_the_declared_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    SqlMetadataStore(url).close()
    assert _differences(url, metadata_obj) == []


def test_the_comparison_does_notice_a_difference(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    SqlMetadataStore(url).close()
    changed = MetaData()
    for table in metadata_obj.tables.values():
        table.to_metadata(changed)
    Table("extra", changed, Column("id", Integer, primary_key=True))
    assert [difference[0] for difference in _differences(url, changed)] == ["add_table"]


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


def test_downgrade_to_base_and_upgrade_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    SqlMetadataStore(url).close()
    command.downgrade(alembic_config(url=url), "base")
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()
    command.upgrade(alembic_config(url=url), "head")
    assert _differences(url, metadata_obj) == []


def _columns(url: str, table: str) -> set[str]:
    engine = create_engine(url)
    try:
        return {column["name"] for column in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_downgrade_to_0001_keeps_the_runs_and_upgrading_again_restores_the_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    store = SqlMetadataStore(url)
    store.save_pipeline_version("train", {"steps": ["fit"]})
    store.create_execution(
        execution_id="exec-0001", pipeline_name="train", pipeline_version=1, parameters={}, work_dir="/w", steps=[]
    )
    store.create_execution(
        execution_id="exec-0002",
        pipeline_name="train",
        pipeline_version=1,
        parameters={},
        work_dir="/w",
        steps=[("fit", "training")],
        parent_execution_id="exec-0001",
    )
    store.start_attempt("exec-0002", "fit", log_path="/logs/fit.log")
    store.close()
    assert "pid" not in _columns(url, "step_attempts")  # at head: no attempt records a process id

    command.downgrade(alembic_config(url=url), "0001")
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert current_revision(engine) == "0001"
    with engine.connect() as connection:
        counts = [
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar()
            for table in ("executions", "step_runs", "step_attempts")
        ]
    engine.dispose()
    assert not tables & {"cache_entries", "content_index", "metric_points"}
    assert "pid" not in _columns(url, "step_attempts")
    assert "parent_execution_id" not in _columns(url, "executions")
    # Dropping columns must not recreate tables: with foreign keys on, that would cascade-delete step runs.
    assert counts == [2, 1, 1]

    reopened = SqlMetadataStore(url)  # migrates the 0001 database forward on open
    assert reopened.get_execution("exec-0002").parent_execution_id is None
    [attempt] = reopened.list_attempts("exec-0002", "fit")
    assert (attempt.status, attempt.log_path) == (StepStatus.EXECUTING, "/logs/fit.log")
    reopened.close()
    assert _differences(url, metadata_obj) == []


def test_a_0004_database_upgrades_with_its_executions_unowned_and_no_events(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    store = SqlMetadataStore(url)
    store.save_pipeline_version("train", {"steps": ["fit"]})
    store.create_execution(execution_id="exec-0001", pipeline_name="train", pipeline_version=1, parameters={},
                           work_dir="/w", steps=[("fit", "training")])
    store.claim_execution("exec-0001", "orchestrator", 60)
    store.append_events([StepEventDraft("exec-0001", StepEventKind.STEP, step_name="fit", status="Executing")])
    store.close()

    command.downgrade(alembic_config(url=url), "0004")
    assert not {"owner", "epoch", "lease_expires_at", "code_snapshot"} & _columns(url, "executions")
    engine = create_engine(url)
    assert "step_events" not in inspect(engine).get_table_names()
    engine.dispose()

    reopened = SqlMetadataStore(url)  # migrates forward on open
    record = reopened.get_execution("exec-0001")
    assert (record.owner, record.epoch, record.lease_expires_at, record.code_snapshot) == (None, 0, None, None)
    assert reopened.events("exec-0001") == []
    assert [run.name for run in reopened.list_step_runs("exec-0001")] == ["fit"]  # nothing cascaded away
    assert reopened.claim_execution("exec-0001", "next", 60) == 1
    reopened.close()
    assert _differences(url, metadata_obj) == []
