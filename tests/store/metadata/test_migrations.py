"""The Alembic migrations build exactly the schema tables.py declares, and HEAD_REVISION names their head."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, inspect

from forgeline.store.metadata.migrate import HEAD_REVISION, alembic_config
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
