"""RayExecutor passes the executor contract on a real two-node Ray cluster with artifacts on an S3 server."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts.executor_contract import ExecutorContract, ScriptJob
from executors.ray_fixtures import RayCluster
from forgeline.executors.ray import RayExecutor
from forgeline.jobs.placement import JobRoots
from forgeline.jobs.spec import JobKind, JobSpec
from forgeline.store.artifacts import ArtifactStore

pytestmark = pytest.mark.ray


@pytest.fixture
def s3_artifacts(s3_endpoint: str, s3_bucket: str) -> ArtifactStore:
    """An artifact store on the S3 server, configured by storage options only (as FORGELINE_STORAGE_OPTIONS)."""
    options = {"s3": {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}}
    return ArtifactStore(f"s3://{s3_bucket}/forgeline", options_by_protocol=json.loads(json.dumps(options)))


@pytest.fixture
def roots(tmp_path: Path) -> JobRoots:
    return JobRoots(tmp_path / "jobs", tmp_path / "logs", tmp_path / "code", tmp_path / "envs")


class TestRayExecutor(ExecutorContract):
    @pytest.fixture
    def artifacts(self, s3_artifacts: ArtifactStore) -> ArtifactStore:
        """The contract's artifact store is the S3 one: every node reaches it."""
        return s3_artifacts

    @pytest.fixture
    def executor(self, ray_cluster: RayCluster, s3_artifacts: ArtifactStore,
                 roots: JobRoots) -> Iterator[RayExecutor]:
        executor = RayExecutor(s3_artifacts, ray_cluster.executor, roots=roots)
        yield executor
        executor.shutdown(grace_seconds=1.0)

    @pytest.fixture
    def fresh_executor(self, ray_cluster: RayCluster, s3_artifacts: ArtifactStore, roots: JobRoots):
        return lambda: RayExecutor(s3_artifacts, ray_cluster.executor, roots=roots)

    @pytest.fixture
    def script_job(self, tmp_path: Path) -> ScriptJob:
        counter = itertools.count(1)

        def make(text: str) -> JobSpec:
            n = next(counter)
            code = tmp_path / "code" / f"job{n}.py"
            code.parent.mkdir(parents=True, exist_ok=True)
            code.write_text(text)
            return JobSpec(kind=JobKind.PROCESSING, job_id=f"exec-{tmp_path.name}/step{n}/1",
                           job_dir=str(tmp_path / "jobs" / str(n)), log_path=str(tmp_path / "logs" / f"{n}.log"),
                           code=str(code), working_dir=str(tmp_path))

        return make
