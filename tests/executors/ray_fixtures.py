"""A real local Ray cluster for tests: a head and a second node, each its own processes with one CPU, on 127.0.0.1.

Import the ``ray_cluster`` fixture into a test module (``from executors.ray_fixtures import ray_cluster``). The
cluster lives for the session; it is stopped by ending exactly the processes it started (found by its own
temporary folder), never by ``ray stop``, which would end every Ray cluster of the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from forgeline.jobs.process_tree import descendants, signal_all

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
HEAD_RESOURCE = "test_head"
"""A custom resource only the head has: a fault test pins a blocker there to push a job onto the second node."""
START_SECONDS = 120.0


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RayCluster:
    """A running test cluster: its address, and the second node that fault tests kill and start again."""

    address: str
    temp_dir: Path
    second_node_port: int

    @property
    def executor(self) -> str:
        """The FORGELINE_EXECUTOR value that reaches this cluster."""
        return f"ray://{self.address}"

    def start_second_node(self) -> None:
        """Start (again) the second node, and wait until the cluster counts it alive."""
        self.second_node_port = free_port()
        _ray("start", "--address", self.address, "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
             "--node-manager-port", str(self.second_node_port), "--disable-usage-stats")
        self.wait_for_nodes(2)

    def kill_second_node(self) -> None:
        """SIGKILL the second node's raylet (the node dies as if its machine was lost) and the processes under it."""
        for pid in self._pids(f"--node_manager_port={self.second_node_port}"):
            below = descendants(pid)
            os.kill(pid, signal.SIGKILL)
            signal_all(below, signal.SIGKILL)

    def alive_nodes(self) -> int:
        """How many nodes the cluster counts alive (asked through a short-lived driver)."""
        script = (f"import ray; ray.init(address={self.address!r}, log_to_driver=False); "
                  "print('alive nodes:', sum(1 for n in ray.nodes() if n['Alive']))")
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              env={**os.environ, **RAY_ENV})
        # Ray may print the cluster's own messages (a node marked dead) on the same stdout: only our line counts
        counts = [line.split(":")[1] for line in done.stdout.splitlines() if line.startswith("alive nodes:")]
        return int(counts[-1]) if done.returncode == 0 and counts else 0

    def wait_for_nodes(self, count: int) -> None:
        """Wait until exactly ``count`` nodes are alive."""
        deadline = time.monotonic() + START_SECONDS
        while self.alive_nodes() != count:
            assert time.monotonic() < deadline, f"the Ray cluster did not reach {count} live nodes"
            time.sleep(0.5)

    def stop(self) -> None:
        """End every process of this cluster (and what they started), then remove its folder."""
        for pid in self._pids(str(self.temp_dir)):
            below = descendants(pid)
            signal_all([pid, *below], signal.SIGKILL)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def _pids(self, marker: str) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in command and (str(self.temp_dir) in command or marker == str(self.temp_dir)):
                found.append(int(entry.name))
        return found


def _ray(*arguments: str) -> None:
    ray = str(Path(sys.executable).with_name("ray"))
    done = subprocess.run([ray, *arguments], capture_output=True, text=True, timeout=START_SECONDS,
                          env={**os.environ, **RAY_ENV})
    if done.returncode != 0:
        raise RuntimeError(f"ray {' '.join(arguments)} failed: {done.stderr[-2000:]}")


def start_cluster() -> RayCluster:
    """Start a head and a second node (one CPU each; the head also has HEAD_RESOURCE); stop() ends them."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: Ray's socket paths must stay short
    port = free_port()
    cluster = RayCluster(f"127.0.0.1:{port}", temp_dir, 0)
    try:
        _ray("start", "--head", "--port", str(port), "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
             "--temp-dir", str(temp_dir), "--include-dashboard", "false", "--disable-usage-stats",
             "--resources", json.dumps({HEAD_RESOURCE: 1}))
        cluster.start_second_node()
    except BaseException:
        cluster.stop()
        raise
    return cluster


@pytest.fixture(scope="session")
def ray_cluster(s3_endpoint: str) -> Iterator[RayCluster]:
    """A head and a second node on 127.0.0.1 with one CPU each; the S3 test server is up before them."""
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in RAY_ENV.items():
            patch.setenv(key, value)
        cluster = start_cluster()
        try:
            yield cluster
        finally:
            cluster.stop()


@pytest.fixture
def ray_env(ray_cluster: RayCluster, forgeline_home: Path, s3_endpoint: str, s3_bucket: str) -> dict[str, str]:
    """The environment of a user whose settings name the Ray cluster and an S3 bucket (by storage options only)."""
    options = {"s3": {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}}
    return {**os.environ, "FORGELINE_HOME": str(forgeline_home), "FORGELINE_EXECUTOR": ray_cluster.executor,
            "FORGELINE_ARTIFACT_ROOT": f"s3://{s3_bucket}/forgeline", "FORGELINE_STORAGE_OPTIONS": json.dumps(options)}
