"""Housekeeper over a real SQLite store and a real artifact store, local or S3 (an in-process S3 server)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from forgeline.config import Settings
from forgeline.engine.housekeeping import Housekeeper
from forgeline.errors import ForgelineError
from forgeline.executors.local import LocalExecutor
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.records import CacheEntry, ExecutionStatus, ModelPackageDraft, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.updates import ExecutionUpdate, StepRunUpdate
from forgeline.workflow.models import ModelApprovalStatus

NOW = datetime.now(UTC)


@pytest.fixture(params=["local", "s3"])
def stores(request: Any, tmp_path: Path) -> Any:
    home = tmp_path / "home"
    if request.param == "local":
        artifacts = ArtifactStore(str(home / "artifacts"))
    else:
        endpoint, bucket = request.getfixturevalue("s3_endpoint"), request.getfixturevalue("s3_bucket")
        artifacts = ArtifactStore(f"s3://{bucket}/root", client_kwargs={"endpoint_url": endpoint},
                                  skip_instance_cache=True)
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'forgeline.db'}", artifact_root=artifacts.root)
    store = SqlMetadataStore(settings.database_url)
    yield store, artifacts, settings
    store.close()


def keeper(store: SqlMetadataStore, artifacts: ArtifactStore, settings: Settings, *,
           dry_run: bool = False) -> Housekeeper:
    return Housekeeper(store, artifacts, settings, executor=LocalExecutor(artifacts, 1), dry_run=dry_run)


def _execution(store: SqlMetadataStore, artifacts: ArtifactStore, settings: Settings, execution_id: str,
               ended: datetime | None, reuse: str | None = None) -> dict[str, str]:
    """A finished execution (still running when ``ended`` is None) with its artifacts, logs and job folder."""
    version = store.save_pipeline_version("p", {"steps": ["Prep", "Fit"]})
    store.create_execution(execution_id=execution_id, pipeline_name="p", pipeline_version=version.version,
                           parameters={}, work_dir="/w", steps=[("Prep", "processing"), ("Fit", "training")])
    uris = {"data": artifacts.uri("executions", reuse or execution_id, "Prep", "data"),
            "model": artifacts.uri("executions", execution_id, "Fit", "model"),
            "report": artifacts.uri("executions", execution_id, "Fit", "report.json")}
    if reuse is None:
        artifacts.write_bytes(f"{uris['data']}/rows.csv", b"r" * 300)
        store.put_cache_entry(CacheEntry("k" * 64, "p", "Prep", "processing", execution_id, {},
                                         {"data": uris["data"]}, {}, ended or NOW))
    artifacts.write_bytes(f"{uris['model']}/model.bin", b"m" * 200)
    artifacts.write_bytes(uris["report"], b"{}" * 50)
    store.update_step_run(execution_id, "Prep", StepRunUpdate(
        status=StepStatus.SUCCEEDED, outputs={"data": uris["data"]}, cache_hit=reuse is not None, cache_source=reuse))
    store.update_step_run(execution_id, "Fit", StepRunUpdate(
        status=StepStatus.SUCCEEDED, outputs={"model": uris["model"]}, properties={"Report": uris["report"]}))
    if ended is not None:
        store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.SUCCEEDED, ended_at=ended))
    for folder in (settings.logs_dir / execution_id, settings.jobs_dir / execution_id / "Fit" / "1"):
        folder.mkdir(parents=True)
        (folder / "out.log").write_text("x" * 10)
    return uris


def test_delete_keeps_what_a_package_and_a_cache_hit_use_and_counts_the_rest(stores: Any) -> None:
    store, artifacts, settings = stores
    first = _execution(store, artifacts, settings, "exec-1", NOW)
    _execution(store, artifacts, settings, "exec-2", NOW, reuse="exec-1")
    store.create_model_package(ModelPackageDraft("g", ModelApprovalStatus.APPROVED, first["model"]), actor="t")

    dry = keeper(store, artifacts, settings, dry_run=True).delete_execution("exec-1")
    assert artifacts.exists(first["report"]) and store.list_execution_ids() == {"exec-1", "exec-2"}
    report = keeper(store, artifacts, settings).delete_execution("exec-1")

    assert report.removed == dry.removed and report.bytes_freed == 100 + 10 + 10
    assert sorted(dict(report.kept)) == [first["model"], first["data"]]
    assert store.list_execution_ids() == {"exec-2"}
    assert not artifacts.exists(first["report"]) and artifacts.exists(f"{first['model']}/model.bin")
    assert artifacts.exists(f"{first['data']}/rows.csv") and store.list_cache_entries_of("exec-1")
    assert not (settings.logs_dir / "exec-1").exists() and not (settings.jobs_dir / "exec-1").exists()


def test_collect_takes_only_old_executions_then_expired_cache_entries_and_leftovers(stores: Any) -> None:
    store, artifacts, settings = stores
    old = _execution(store, artifacts, settings, "exec-old", NOW - timedelta(days=40))
    _execution(store, artifacts, settings, "exec-new", NOW - timedelta(hours=1))
    stray = artifacts.uri("executions", "exec-deleted-long-ago", "Fit", "model")
    artifacts.write_bytes(f"{stray}/model.bin", b"s" * 7)
    (settings.logs_dir / "exec-deleted-long-ago").mkdir(parents=True)

    report = keeper(store, artifacts, settings).collect(timedelta(days=30))

    assert report.executions == ["exec-old"]
    assert store.list_execution_ids() == {"exec-new"} and store.list_cache_entries_of("exec-old") == []
    assert artifacts.children(artifacts.uri("executions")) == [artifacts.uri("executions", "exec-new")]
    assert not artifacts.exists(old["data"]) and not (settings.logs_dir / "exec-deleted-long-ago").exists()
    assert report.bytes_freed == 300 + 200 + 100 + 10 + 10 + 7
    assert keeper(store, artifacts, settings).collect(timedelta(days=30)).removed == []


def test_a_running_execution_is_refused(stores: Any) -> None:
    store, artifacts, settings = stores
    _execution(store, artifacts, settings, "exec-1", None)
    store.update_execution("exec-1", ExecutionUpdate(heartbeat_at=NOW))

    with pytest.raises(ForgelineError, match="exec-1 is running"):
        keeper(store, artifacts, replace(settings, orchestrator_timeout_seconds=3600)).delete_execution("exec-1")
    assert store.list_execution_ids() == {"exec-1"}
