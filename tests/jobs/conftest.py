"""Fixtures for job tests: a project folder for user scripts, an artifact store, and JobSpec builders."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from forgeline.jobs.function import FunctionWorker
from forgeline.jobs.spec import FunctionRef, JobSpec
from forgeline.store.artifacts import ArtifactStore


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(str(tmp_path / "artifacts"))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    return folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def processing_spec(tmp_path: Path, code: Path, **fields: Any) -> JobSpec:
    return JobSpec(
        kind="processing",
        job_id="exec-1/step/1",
        job_dir=str(tmp_path / "jobs" / "step"),
        log_path=str(tmp_path / "logs" / "step.log"),
        code=str(code),
        working_dir=str(code.parent),
        **fields,
    )


def function_spec(tmp_path: Path, file: Path, name: str, *args: Any, **fields: Any) -> JobSpec:
    attempt = fields.pop("attempt", 1)
    return JobSpec(
        kind="function",
        job_id=f"exec-1/{name}/{attempt}",
        job_dir=str(tmp_path / "jobs" / f"{name}-{attempt}"),
        log_path=str(tmp_path / "logs" / f"{name}-{attempt}.log"),
        function=FunctionRef(name=name, file=str(file)),
        args=args,
        working_dir=str(file.parent),
        **fields,
    )


class SingleWorker:
    """A WorkerSource of one worker, respawned when it cannot be reused."""

    def __init__(self) -> None:
        self.worker: FunctionWorker | None = None
        self.spawned = 0

    @contextmanager
    def lease(self) -> Iterator[FunctionWorker]:
        if self.worker is None or not self.worker.reusable:
            if self.worker is not None:
                self.worker.dispose()
            self.worker = FunctionWorker.spawn()
            self.spawned += 1
        yield self.worker

    def close(self) -> None:
        if self.worker is not None:
            self.worker.dispose()


@pytest.fixture
def single_worker() -> Iterator[SingleWorker]:
    source = SingleWorker()
    yield source
    source.close()
