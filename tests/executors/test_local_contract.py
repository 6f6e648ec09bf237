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


@pytest.fixture
def roots(tmp_path: Path) -> JobRoots:
    return JobRoots(tmp_path / "placed-jobs", tmp_path / "logs", tmp_path / "code", tmp_path / "envs")


class TestLocalExecutor(ExecutorContract):
    @pytest.fixture
    def executor(self, artifacts: ArtifactStore, roots: JobRoots) -> Iterator[LocalExecutor]:
        local = LocalExecutor(artifacts, max_parallel=2, roots=roots)
        yield local
        local.shutdown(grace_seconds=1.0)

    @pytest.fixture
    def fresh_executor(self, artifacts: ArtifactStore, roots: JobRoots):
        return lambda: LocalExecutor(artifacts, max_parallel=1, roots=roots)

    @pytest.fixture
    def script_job(self, tmp_path: Path, roots: JobRoots) -> ScriptJob:
        counter = itertools.count(1)

        def make(text: str) -> JobSpec:
            n = next(counter)
            code = tmp_path / "code" / f"job{n}.py"
            code.parent.mkdir(parents=True, exist_ok=True)
            code.write_text(text)
            # the job folder is where the executor places a job that names none (a successor finds it there)
            job_id = f"exec/step{n}/1"
            return JobSpec(kind=JobKind.PROCESSING, job_id=job_id, job_dir=str(roots.jobs_dir / job_id),
                           log_path=str(tmp_path / "logs" / f"{n}.log"), code=str(code), working_dir=str(tmp_path))

        return make
