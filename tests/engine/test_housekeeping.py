"""Housekeeper over a real SQLite store and a real artifact store, local or S3 (an in-process S3 server)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from forgeline.config import Settings
from forgeline.engine.housekeeping import Housekeeper, Removal
from forgeline.errors import ArtifactNotFoundError, ForgelineError
from forgeline.executors.local import LocalExecutor
from forgeline.jobs.placement import JobRoots, checkout_snapshot
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.records import CacheEntry, ExecutionStatus, ModelPackageDraft, StepStatus
from forgeline.store.metadata.schedule_store import CatchupPolicy, OverlapPolicy, ScheduleDraft, StoredPipelineRef
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.trigger_store import TriggerDraft
from forgeline.store.metadata.updates import ExecutionUpdate, StepRunUpdate
from forgeline.store.snapshots import (
    list_blob_uris,
    list_snapshot_ids,
    manifest_uri,
    read_snapshot,
    restore_snapshot,
    save_snapshot,
)
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


def _code(tmp_path: Path, **files: str) -> dict[str, Path]:
    folder = tmp_path / "code"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        (folder / f"{name}.py").write_text(text)
    return {f"{name}.py": folder / f"{name}.py" for name in files}


def _age(settings: Settings, days: float) -> None:
    """Make every stored snapshot file and checkout look written ``days`` ago (a local store's real mtimes)."""
    then = (NOW - timedelta(days=days)).timestamp()
    for root in (Path(settings.artifact_root) / "snapshots", settings.home / "code"):
        for path in [root, *root.rglob("*")] if root.exists() else []:
            os.utime(path, (then, then))


def _pipeline_ref(store: SqlMetadataStore, name: str, snapshot: str) -> StoredPipelineRef:
    version = store.save_pipeline_version(name, {"steps": [name]})
    return StoredPipelineRef(name, version.version, snapshot, None, "/w")


def test_collect_removes_snapshots_no_record_names_and_the_blobs_only_they_use(stores: Any, tmp_path: Path) -> None:
    store, artifacts, settings = stores
    code = _code(tmp_path, a="A" * 10, shared="S" * 20, b="B" * 30, c="C" * 40, d="D" * 50, e="E" * 60, f="F" * 70)
    unused = save_snapshot(artifacts, {"a.py": code["a.py"], "shared.py": code["shared.py"]})
    by_execution = save_snapshot(artifacts, {"b.py": code["b.py"], "shared.py": code["shared.py"]})
    by_version = save_snapshot(artifacts, {"c.py": code["c.py"]})
    by_schedule = save_snapshot(artifacts, {"d.py": code["d.py"]})
    by_trigger = save_snapshot(artifacts, {"e.py": code["e.py"]})
    by_old_execution = save_snapshot(artifacts, {"f.py": code["f.py"]})
    for execution_id, snapshot, ended in (("exec-kept", by_execution, NOW), ("exec-old", by_old_execution, NOW - timedelta(days=40))):
        store.create_execution(execution_id=execution_id, pipeline_name="p",
                               pipeline_version=store.save_pipeline_version("p", {"steps": []}).version,
                               parameters={}, work_dir="/w", steps=[], code_snapshot=snapshot)
        store.update_execution(execution_id, ExecutionUpdate(status=ExecutionStatus.SUCCEEDED, ended_at=ended))
    store.save_pipeline_version("stored", {"steps": ["x"]}, by_version)
    store.create_schedule(ScheduleDraft("nightly", _pipeline_ref(store, "s", by_schedule), "0 3 * * *", "UTC", {},
                                        CatchupPolicy.NONE, OverlapPolicy.SKIP, NOW + timedelta(days=1)))
    store.create_trigger(TriggerDraft("arrivals", _pipeline_ref(store, "t", by_trigger), str(tmp_path / "in"),
                                      "*.csv", 5.0, {}))

    young = keeper(store, artifacts, settings, dry_run=True).collect(timedelta(days=30))
    later = NOW + timedelta(days=2)  # every snapshot file is older than its grace period by then
    dry = keeper(store, artifacts, settings, dry_run=True).collect(timedelta(days=30), now=later)
    assert len(list_snapshot_ids(artifacts)) == 6
    report = keeper(store, artifacts, settings).collect(timedelta(days=30), now=later)

    assert not [item for item in young.removed if item.kind.startswith("code")]  # all within the grace period
    assert report.removed == dry.removed
    snapshots = [item for item in report.removed if item.kind == "code snapshot"]
    blobs = [item for item in report.removed if item.kind == "code blob"]
    assert sorted(item.location for item in snapshots) == sorted(
        manifest_uri(artifacts, snapshot) for snapshot in (unused, by_old_execution))
    assert sorted(item.size for item in blobs) == [10, 70]  # a.py and f.py; shared.py is still used
    assert list_snapshot_ids(artifacts) == {by_execution, by_version, by_schedule, by_trigger}
    for kept in (by_execution, by_version, by_schedule, by_trigger):
        restore_snapshot(artifacts, kept, tmp_path / "restored" / kept)
    assert (tmp_path / "restored" / by_execution / "shared.py").read_text() == "S" * 20
    with pytest.raises(ArtifactNotFoundError):
        read_snapshot(artifacts, unused)
    assert not [item for item in keeper(store, artifacts, settings).collect(timedelta(days=30), now=later).removed
                if item.kind.startswith("code")]


def test_checkouts_go_once_no_unfinished_execution_runs_their_snapshot(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'forgeline.db'}",
                        artifact_root=str(home / "artifacts"))
    store, artifacts = SqlMetadataStore(settings.database_url), ArtifactStore(settings.artifact_root)
    code = _code(tmp_path, run="R" * 10, done="D" * 20)
    running, done = (save_snapshot(artifacts, {name: code[name]}) for name in ("run.py", "done.py"))
    for execution_id, snapshot in (("exec-run", running), ("exec-done", done)):
        store.create_execution(execution_id=execution_id, pipeline_name="p",
                               pipeline_version=store.save_pipeline_version("p", {"steps": []}).version,
                               parameters={}, work_dir="/w", steps=[], code_snapshot=snapshot)
    store.update_execution("exec-done", ExecutionUpdate(status=ExecutionStatus.SUCCEEDED, ended_at=NOW))
    code_dir = JobRoots.of(settings).code_dir
    checkouts = {snapshot: checkout_snapshot(artifacts, snapshot, code_dir) for snapshot in (running, done)}

    fresh = keeper(store, artifacts, settings).collect(timedelta(days=30))
    kept_while_fresh = all(path.is_dir() for path in checkouts.values())
    _age(settings, 2)
    dry = keeper(store, artifacts, settings, dry_run=True).collect(timedelta(days=30))
    report = keeper(store, artifacts, settings).collect(timedelta(days=30))

    assert fresh.removed == [] and kept_while_fresh
    assert dry.removed == report.removed == [Removal("checkout", str(checkouts[done]), 20)]
    assert checkouts[running].is_dir() and not checkouts[done].exists()
    assert list_snapshot_ids(artifacts) == {running, done}  # both still named by their executions
    store.close()


class _Interleaving(ArtifactStore):
    """An artifact store that runs ``meanwhile`` once, when gc first touches ``at`` through ``method``."""

    def __init__(self, root: str, method: str, at: str, meanwhile: Callable[[], None]) -> None:
        super().__init__(root)
        self.hook: tuple[str, str, Callable[[], None]] | None = (method, at, meanwhile)

    def _fire(self, method: str, uri: str) -> None:
        if self.hook is not None and self.hook[:2] == (method, uri):
            meanwhile, self.hook = self.hook[2], None
            meanwhile()

    def modified(self, uri: str) -> float | None:
        self._fire("modified", uri)
        return super().modified(uri)

    def delete(self, uri: str) -> None:
        self._fire("delete", uri)
        super().delete(uri)


@pytest.mark.parametrize("moment", ["deleting the old snapshot", "deciding on the blob"])
def test_a_snapshot_a_run_saves_during_gc_keeps_the_blob_it_shares_with_a_collected_one(
        tmp_path: Path, moment: str) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'forgeline.db'}",
                        artifact_root=str(home / "artifacts"))
    store, plain = SqlMetadataStore(settings.database_url), ArtifactStore(settings.artifact_root)
    code = _code(tmp_path, shared="S" * 100, old="O" * 10, new="N" * 10)
    old = save_snapshot(plain, {"shared.py": code["shared.py"], "old.py": code["old.py"]})
    _age(settings, 2)
    saved: list[str] = []

    def run_starts() -> None:  # a `forgeline run` in another process, with code that reuses shared.py
        saved.append(save_snapshot(plain, {"shared.py": code["shared.py"], "new.py": code["new.py"]}))

    shared_blob = list_blob_uris(plain)[hashlib.sha256(b"S" * 100).hexdigest()]
    hook = ("delete", manifest_uri(plain, old)) if moment == "deleting the old snapshot" else ("modified", shared_blob)
    artifacts = _Interleaving(settings.artifact_root, *hook, run_starts)
    report = keeper(store, artifacts, settings).collect(timedelta(days=30))

    assert saved, "the run never started"
    assert [item.kind for item in report.removed] == ["code snapshot", "code blob"]  # old.py's blob only
    restored = restore_snapshot(plain, saved[0], tmp_path / "checkout")
    assert sorted(path.name for path in restored) == ["new.py", "shared.py"]
    store.close()


def test_saving_a_snapshot_again_refreshes_it_and_puts_back_a_blob_gc_took(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'forgeline.db'}",
                        artifact_root=str(home / "artifacts"))
    artifacts = ArtifactStore(settings.artifact_root)
    code = _code(tmp_path, one="1" * 10, two="2" * 20)
    files = {"one.py": code["one.py"], "two.py": code["two.py"]}
    snapshot = save_snapshot(artifacts, files)
    _age(settings, 2)
    artifacts.delete(list_blob_uris(artifacts)[hashlib.sha256(b"2" * 20).hexdigest()])

    assert save_snapshot(artifacts, files) == snapshot

    assert artifacts.modified(manifest_uri(artifacts, snapshot)) > (NOW - timedelta(hours=1)).timestamp()
    assert len(restore_snapshot(artifacts, snapshot, tmp_path / "checkout")) == 2
