"""Warm job hosts on a real two-node Ray cluster: a job is found by its id on its host, and an idle host ends
itself (so a crashed orchestrator's hosts give their CPUs back)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from executors.ray_fixtures import RayCluster
from forgeline.executors.ray_cluster import NAMESPACE, connect
from forgeline.executors.ray_host import HOST_PREFIX, HostPool, find_hosted
from forgeline.executors.ray_staging import ship
from forgeline.jobs.spec import JobKind, JobSpec
from forgeline.store.artifacts import ArtifactStore

pytestmark = pytest.mark.ray
DEADLINE_SECONDS = 120.0


def host_names() -> set[str]:
    import ray

    listed = ray.util.list_named_actors(all_namespaces=True)
    return {entry["name"] for entry in listed if entry["namespace"] == NAMESPACE and
            entry["name"].startswith(HOST_PREFIX)}


def test_a_hosted_job_is_found_by_its_id_and_its_host_ends_itself_once_idle(
        ray_cluster: RayCluster, tmp_path: Path, s3_endpoint: str, s3_bucket: str) -> None:
    import ray

    connect(ray_cluster.executor)
    artifacts = ArtifactStore(f"s3://{s3_bucket}/forgeline",
                              options_by_protocol={"s3": {"endpoint_url": s3_endpoint, "key": "testing",
                                                          "secret": "testing"}})
    code = tmp_path / "job.py"
    code.write_text("print('hosted', flush=True)\n")
    spec = JobSpec(kind=JobKind.PROCESSING, job_id=f"exec-{tmp_path.name}/Hosted/1",
                   job_dir=str(tmp_path / "job"), log_path=str(tmp_path / "job.log"), code=str(code),
                   working_dir=str(tmp_path))
    before = host_names()
    pool = HostPool({"num_cpus": 1})
    hosted = pool.run(spec.job_id, ship(spec, artifacts).to_json(), artifacts.root, artifacts.options_by_protocol,
                      give_up=lambda: False)
    assert hosted is not None
    found = find_hosted(spec.job_id)
    assert found is not None and found.host == hosted.host
    assert find_hosted(spec.job_id + "-other") is None
    progress = ray.get(found.progress.remote(0, 0, 60.0))
    assert progress.result is not None and progress.result.status.value == "Succeeded", progress
    assert b"hosted" in progress.log
    ray.get(hosted.host.release.remote(spec.job_id))  # free, and no orchestrator takes it: it ends itself
    assert find_hosted(spec.job_id) is None
    mine = host_names() - before
    assert len(mine) == 1, mine
    deadline = time.monotonic() + DEADLINE_SECONDS
    while mine & host_names():
        assert time.monotonic() < deadline, "the idle host never ended itself"
        time.sleep(0.5)
