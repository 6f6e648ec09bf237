"""Migration 0003 adds the model registry tables and removes them again without touching the runs."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect

from forgeline.store.metadata.migrate import alembic_config, current_revision
from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.models import ModelApprovalStatus

REGISTRY_TABLES = {"model_package_groups", "model_packages", "model_package_events"}


def test_downgrade_to_0002_drops_only_the_registry_and_reopening_restores_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    store = SqlMetadataStore(url)
    store.save_pipeline_version("train", {"steps": []})
    store.create_model_package(ModelPackageDraft(group="g", approval_status=ModelApprovalStatus.APPROVED,
                                                 model_data="/m"), actor="a")
    store.close()

    command.downgrade(alembic_config(url=url), "0002")
    engine = create_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert current_revision(engine) == "0002"
    engine.dispose()
    assert not tables & REGISTRY_TABLES and {"pipelines", "cache_entries"} <= tables

    reopened = SqlMetadataStore(url)
    assert [v.version for v in reopened.list_pipeline_versions("train")] == [1]
    assert reopened.list_model_package_groups() == []
    reopened.close()
