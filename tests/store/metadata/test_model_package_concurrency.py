"""Processes registering into one model package group at the same moment get distinct versions 1..N."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError

from forgeline.errors import StoreError
from forgeline.store.metadata import model_packages_repository
from forgeline.store.metadata.records import ModelPackageDraft
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.models import ModelApprovalStatus

from . import concurrency_workers

PROCESSES = 8


def test_concurrent_registrations_get_versions_one_to_n(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'forgeline.db'}"
    SqlMetadataStore(url).close()  # the schema exists: the race is on version numbers, not on migrating
    # fork: the children start in milliseconds and open their own store (none is open in the parent)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    workers = [context.Process(target=concurrency_workers.register_packages, args=(url, index, barrier))
               for index in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=concurrency_workers.WAIT_SECONDS)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    store = SqlMetadataStore(url)
    packages = store.list_model_packages("shared")
    total = PROCESSES * concurrency_workers.PACKAGES_PER_PROCESS
    assert sorted(p.version for p in packages) == list(range(1, total + 1))
    assert len({p.model_data for p in packages}) == total
    events = store.list_model_package_events("shared")
    assert sorted(e.version for e in events) == list(range(1, total + 1))
    assert {e.actor for e in events} == {f"worker-{index}" for index in range(PROCESSES)}
    store.close()


def test_a_lost_race_for_a_version_number_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL does not queue writers like SQLite: a unique-constraint clash means "look again"."""
    store = SqlMetadataStore(f"sqlite:///{tmp_path / 'forgeline.db'}")
    real = model_packages_repository.insert_package
    calls: list[int] = []

    def clash_once(connection: Any, draft: ModelPackageDraft, actor: str) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise IntegrityError("INSERT INTO model_packages", {}, Exception("UNIQUE constraint failed"))
        return real(connection, draft, actor)

    monkeypatch.setattr(model_packages_repository, "insert_package", clash_once)
    draft = ModelPackageDraft(group="g", approval_status=ModelApprovalStatus.APPROVED, model_data="/m")
    assert store.create_model_package(draft, actor="a").version == 1
    assert len(calls) == 2

    monkeypatch.setattr(model_packages_repository, "insert_package",
                        lambda *args: (_ for _ in ()).throw(IntegrityError("x", {}, Exception("clash"))))
    with pytest.raises(StoreError, match="could not register a new version of model package group 'g'"):
        store.create_model_package(draft, actor="a")
    store.close()
