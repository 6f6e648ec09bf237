"""LocalExecutor passes the executor contract."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.executor_contract import ExecutorContract, ScriptJob
from forgeline.executors.local import LocalExecutor
from forgeline.jobs.placement import JobRoots
from forgeline.jobs.spec import JobKind, JobSpec
from forgeline.store.artifacts import ArtifactStore


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self, artifacts: ArtifactStore, tmp_path: Path) -> Iterator[LocalExecutor]:
        local = LocalExecutor(artifacts, max_parallel=2, roots=JobRoots(tmp_path / "placed-jobs", tmp_path / "logs",
                                                                       tmp_path / "code", tmp_path / "envs"))
        yield local
        local.shutdown(grace_seconds=1.0)

    @pytest.fixture
    def fresh_executor(self, artifacts: ArtifactStore):
        return lambda: LocalExecutor(artifacts, max_parallel=1)

    @pytest.fixture
    def script_job(self, tmp_path: Path) -> ScriptJob:
        counter = itertools.count(1)

        def make(text: str) -> JobSpec:
            n = next(counter)
            code = tmp_path / "code" / f"job{n}.py"
            code.parent.mkdir(parents=True, exist_ok=True)
            code.write_text(text)
            return JobSpec(kind=JobKind.PROCESSING, job_id=f"exec/step{n}/1", job_dir=str(tmp_path / "jobs" / str(n)),
                           log_path=str(tmp_path / "logs" / f"{n}.log"), code=str(code), working_dir=str(tmp_path))

        return make
