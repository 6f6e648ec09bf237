"""Faults of a Ray cluster as a user meets them: a node lost mid-job, a cluster that is not there, a local artifact
root on a cluster of several nodes; and stop, logs --follow and an orchestrator crash while jobs run on Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli
from executors.ray_fixtures import HEAD_RESOURCE, RAY_ENV, RayCluster

pytestmark = pytest.mark.ray
pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[ray]')")

DEADLINE_SECONDS = 240.0
WORK = """
import os, pathlib, sys, time
markers, mode = pathlib.Path(sys.argv[1]), sys.argv[2]
markers.mkdir(parents=True, exist_ok=True)
attempt = len(list(markers.glob("started-*"))) + 1
if attempt > 1:  # no step runs twice at once: the first attempt's process must be gone
    first = int((markers / "started-1").read_text())
    try:
        os.kill(first, 0)
        print(f"attempt {attempt} overlaps attempt 1 (pid {first} alive)", flush=True)
        sys.exit(5)
    except ProcessLookupError:
        pass
(markers / f"started-{attempt}").write_text(str(os.getpid()))
print(f"attempt {attempt} started", flush=True)
if attempt == 1 and mode == "hold":
    time.sleep(600)
if attempt == 1 and mode == "gate":
    while not (markers / "gate").exists():
        time.sleep(0.1)
print("done", flush=True)
(markers / f"finished-{attempt}").write_text("")
"""
PIPELINE = """
from forgeline.workflow import Pipeline, ProcessingStep, RetryPolicy
work = ProcessingStep(name="Work", code="work.py", arguments=[{markers!r}, {mode!r}],
                      retry_policies=[RetryPolicy(on=["InfrastructureError"], max_attempts=2, interval_seconds=0)])
pipeline = Pipeline(name="on-ray", steps=[work])
"""


@pytest.fixture
def project(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """A project whose one step holds its first attempt (``hold``: sleeping; ``gate``: until markers/gate exists)."""
    folder = tmp_path / "project"
    folder.mkdir()
    markers = tmp_path / "markers"
    mode = getattr(request, "param", "hold")
    (folder / "pipeline.py").write_text(PIPELINE.format(markers=str(markers), mode=mode))
    (folder / "work.py").write_text(WORK)
    yield folder
    for started in markers.glob("started-*"):  # a job process a killed node left behind on this machine
        try:
            os.kill(int(started.read_text()), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


def wait_for(path: Path, what: str) -> str:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not path.exists():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return path.read_text()


def start_run(env: dict[str, str], project: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "run", "pipeline.py"], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def lose_the_second_node_once(ray_cluster: RayCluster, blocker: Blocker, run: subprocess.Popen[str],
                              ready: Callable[[], object]) -> str:
    """Once ``ready()`` returns, free the head and kill the second node; the run's output once it has ended.

    The second node is started again whatever happens, for the next test.
    """
    try:
        ready()
        blocker.release()
        ray_cluster.kill_second_node()
        output, _ = run.communicate(timeout=DEADLINE_SECONDS)
    finally:
        if run.poll() is None:
            run.kill()
        ray_cluster.start_second_node()
    return output


def describe(cli: Cli, execution_id: str, project: Path) -> dict[str, Any]:
    done = cli("executions", "describe", execution_id, "--json", cwd=project)
    assert done.returncode == 0, done
    document: dict[str, Any] = json.loads(done.stdout)
    return document


def only_execution(cli: Cli, project: Path) -> str:
    listed = cli("executions", "list", "--json", cwd=project)
    assert listed.returncode == 0, listed
    executions = json.loads(listed.stdout)
    assert len(executions) == 1, executions
    return str(executions[0]["id"])


class Blocker:
    """A detached actor holding the head's only CPU, so the next job can only be placed on the second node."""

    def __init__(self, cluster: RayCluster) -> None:
        import ray

        for key, value in RAY_ENV.items():
            os.environ.setdefault(key, value)
        if not ray.is_initialized():
            ray.init(address=cluster.address, namespace="forgeline-tests", log_to_driver=False)

        @ray.remote(num_cpus=1, resources={HEAD_RESOURCE: 1})
        class Hold:
            def ping(self) -> bool:
                return True

        self.actor = Hold.options(lifetime="detached").remote()
        ray.get(self.actor.ping.remote(), timeout=DEADLINE_SECONDS)

    def release(self) -> None:
        import ray

        ray.kill(self.actor)


def test_a_node_killed_mid_job_fails_the_attempt_as_infrastructure_and_the_retry_runs_on_a_live_node(
        ray_cluster: RayCluster, ray_env: dict[str, str], project: Path, tmp_path: Path) -> None:
    cli = Cli(ray_env)
    blocker = Blocker(ray_cluster)
    run = start_run(ray_env, project)
    output = lose_the_second_node_once(
        ray_cluster, blocker, run,
        lambda: wait_for(tmp_path / "markers" / "started-1", "the first attempt to start on the second node"))
    assert run.returncode == 0, output
    execution = describe(cli, only_execution(cli, project), project)
    attempts = [a for a in execution["attempts"] if a["step_name"] == "Work"]
    assert [a["status"] for a in attempts] == ["Failed", "Succeeded"], attempts
    assert attempts[0]["failure_kind"] == "InfrastructureError"
    assert "died during the job" in attempts[0]["failure_reason"]
    logs = cli("logs", execution["id"], "Work", "--attempt", "2", cwd=project)
    assert "attempt 2 started" in logs.stdout and "done" in logs.stdout, logs


def test_a_cluster_that_cannot_be_reached_is_one_clear_line(ray_env: dict[str, str], project: Path) -> None:
    from executors.ray_fixtures import free_port

    port = free_port()
    done = Cli({**ray_env, "FORGELINE_EXECUTOR": f"ray://127.0.0.1:{port}"})("run", "pipeline.py", cwd=project)
    assert done.returncode == 1
    assert (f"the Ray cluster at 127.0.0.1:{port} is unreachable (Connection refused); start it (ray start --head "
            f"--port {port}) or fix FORGELINE_EXECUTOR=ray://127.0.0.1:{port}") in " ".join(done.output.split())
    assert "Traceback" not in done.output


def test_a_local_artifact_root_on_a_cluster_of_two_nodes_is_refused_in_one_line(
        ray_env: dict[str, str], project: Path, tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    done = Cli({**ray_env, "FORGELINE_ARTIFACT_ROOT": str(root)})("run", "pipeline.py", cwd=project)
    assert done.returncode == 1
    assert (f"the artifact root {root} is a local folder but the Ray cluster has 2 nodes; set "
            "FORGELINE_ARTIFACT_ROOT to storage every node reaches") in " ".join(done.output.split())
    assert "Traceback" not in done.output


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def wait_until_gone(pid: int) -> None:
    deadline = time.monotonic() + DEADLINE_SECONDS
    while alive(pid):
        assert time.monotonic() < deadline, f"process {pid} of the job is still running"
        time.sleep(0.1)


def test_logs_follow_streams_a_ray_job_and_stop_ends_its_processes(
        ray_env: dict[str, str], project: Path, tmp_path: Path) -> None:
    cli = Cli(ray_env)
    run = start_run(ray_env, project)
    follow = None
    try:
        job_pid = int(wait_for(tmp_path / "markers" / "started-1", "the job to start"))
        execution_id = only_execution(cli, project)
        follow = subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "logs", "-f", execution_id, "Work"],
                                  cwd=project, env=ray_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        assert follow.stdout is not None
        seen = []
        for line in follow.stdout:  # the job still runs: these lines came back from the node while it does
            seen.append(line)
            if "attempt 1 started" in line:
                break
        assert any("running on Ray node" in line for line in seen), seen
        stopped = cli("executions", "stop", execution_id, cwd=project)
        assert stopped.returncode == 0, stopped
        output, _ = run.communicate(timeout=DEADLINE_SECONDS)
        follow.wait(timeout=DEADLINE_SECONDS)
    finally:
        for process in (run, follow):
            if process is not None and process.poll() is None:
                process.kill()
    assert "Stopped" in output, output
    wait_until_gone(job_pid)
    assert describe(cli, execution_id, project)["status"] == "Stopped"


def kill_orchestrator(cli: Cli, project: Path, run: subprocess.Popen[str]) -> str:
    """SIGKILL the execution's orchestrator and the CLI that watched it; the Ray job goes on without them."""
    execution_id = only_execution(cli, project)
    pid = describe(cli, execution_id, project)["orchestrator_pid"]
    os.kill(pid, signal.SIGKILL)
    run.kill()
    run.communicate(timeout=DEADLINE_SECONDS)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while not describe(cli, execution_id, project)["orchestrator_lost"]:  # its lease runs out: resumable
        assert time.monotonic() < deadline, "the dead orchestrator was never judged lost"
        time.sleep(0.5)
    return execution_id


def test_resume_after_an_orchestrator_crash_stops_the_orphaned_ray_job_before_running_the_step_again(
        ray_env: dict[str, str], project: Path, tmp_path: Path) -> None:
    cli = Cli({**ray_env, "FORGELINE_ORCHESTRATOR_TIMEOUT": "15"})
    run = start_run(cli.env, project)
    try:
        job_pid = int(wait_for(tmp_path / "markers" / "started-1", "the job to start"))
        execution_id = kill_orchestrator(cli, project, run)
    finally:
        if run.poll() is None:
            run.kill()
    assert alive(job_pid)  # the detached actor kept the job running
    resumed = cli("executions", "resume", execution_id, cwd=project, timeout=DEADLINE_SECONDS)
    assert resumed.returncode == 0, resumed
    execution = describe(cli, execution_id, project)
    assert execution["status"] == "Succeeded", execution
    attempts = [a for a in execution["attempts"] if a["step_name"] == "Work"]
    assert [(a["status"], a["failure_kind"]) for a in attempts] == [("Failed", "Interrupted"), ("Succeeded", None)]
    assert not alive(job_pid)
    logs = cli("logs", execution_id, "Work", cwd=project)
    assert "overlaps" not in logs.stdout and "attempt 2 started" in logs.stdout, logs


@pytest.mark.parametrize("project", ["gate"], indirect=True)
def test_a_ray_job_that_ended_while_its_orchestrator_was_dead_is_adopted_on_resume(
        ray_env: dict[str, str], project: Path, tmp_path: Path) -> None:
    cli = Cli({**ray_env, "FORGELINE_ORCHESTRATOR_TIMEOUT": "15"})
    run = start_run(cli.env, project)
    try:
        wait_for(tmp_path / "markers" / "started-1", "the job to start")
        execution_id = kill_orchestrator(cli, project, run)
    finally:
        if run.poll() is None:
            run.kill()
    (tmp_path / "markers" / "gate").write_text("")
    wait_for(tmp_path / "markers" / "finished-1", "the job to finish with no orchestrator")
    resumed = cli("executions", "resume", execution_id, cwd=project, timeout=DEADLINE_SECONDS)
    assert resumed.returncode == 0, resumed
    execution = describe(cli, execution_id, project)
    attempts = [a for a in execution["attempts"] if a["step_name"] == "Work"]
    assert [a["status"] for a in attempts] == ["Succeeded"], attempts  # adopted, not run again
    logs = cli("logs", execution_id, "Work", cwd=project)
    assert "done" in logs.stdout and "its result was adopted" in logs.stdout, logs


def test_a_step_asking_for_more_than_any_node_has_fails_saying_so(ray_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "big"
    folder.mkdir()
    (folder / "work.py").write_text("print('never')\n")
    (folder / "pipeline.py").write_text(textwrap.dedent("""
        from forgeline.workflow import Pipeline, ProcessingStep
        pipeline = Pipeline(name="too-big", steps=[ProcessingStep(name="Big", code="work.py",
                                                                  resources={"num_cpus": 1, "num_gpus": 2})])
    """))
    done = Cli(ray_env)("run", "pipeline.py", cwd=folder)
    assert done.returncode == 1, done
    assert ("step 'Big' asks for CPU=1, GPU=2, more than any node of the Ray cluster has (the largest: CPU=1, "
            "GPU=0); lower its resources or instance_type, or add a larger node") in " ".join(done.output.split())


def test_a_pipeline_that_names_ray_runs_on_a_ray_started_for_it(tmp_path: Path, forgeline_home: Path) -> None:
    folder = tmp_path / "own"
    folder.mkdir()
    (folder / "work.py").write_text("print('hello from a job on Ray')\n")
    (folder / "pipeline.py").write_text(textwrap.dedent("""
        from forgeline.workflow import Pipeline, ProcessingStep
        pipeline = Pipeline(name="own-ray", steps=[ProcessingStep(name="Hello", code="work.py")], executor="ray")
    """))
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", "FORGELINE_EXECUTOR")}
    cli = Cli({**env, **RAY_ENV, "FORGELINE_HOME": str(forgeline_home)})  # local executor, local artifact root
    done = cli("run", "pipeline.py", cwd=folder, timeout=DEADLINE_SECONDS)
    assert done.returncode == 0, done
    logs = cli("logs", only_execution(cli, folder), "Hello", cwd=folder)
    assert "[forgeline] running on Ray node" in logs.stdout and "hello from a job on Ray" in logs.stdout, logs


def test_max_run_ends_a_ray_job_on_its_node_as_a_timeout(ray_env: dict[str, str], tmp_path: Path) -> None:
    folder = tmp_path / "slow"
    folder.mkdir()
    (folder / "train.py").write_text("import time\nprint('training', flush=True)\ntime.sleep(120)\n")
    (folder / "pipeline.py").write_text(textwrap.dedent("""
        from forgeline.workflow import Pipeline, TrainingStep
        pipeline = Pipeline(name="slow", steps=[TrainingStep(name="Train", entry_point="train.py", max_run=3)])
    """))
    cli = Cli(ray_env)
    done = cli("run", "pipeline.py", cwd=folder, timeout=DEADLINE_SECONDS)
    assert done.returncode == 1, done
    execution = describe(cli, only_execution(cli, folder), folder)
    attempt = next(a for a in execution["attempts"] if a["step_name"] == "Train")
    assert attempt["failure_kind"] == "Timeout" and "MaxRuntimeExceeded" in attempt["failure_reason"], attempt


def test_a_cached_step_whose_input_is_on_s3_is_reused_on_the_second_run(ray_env: dict[str, str], tmp_path: Path,
                                                                        s3_bucket: str) -> None:
    folder = tmp_path / "cached"
    folder.mkdir()
    (folder / "count.py").write_text(textwrap.dedent("""
        import pathlib
        lines = sum(len(p.read_text().splitlines()) for p in pathlib.Path("data").rglob("*.csv"))
        pathlib.Path("out").mkdir(exist_ok=True)
        pathlib.Path("out/count.txt").write_text(str(lines))
    """))
    (folder / "pipeline.py").write_text(textwrap.dedent(f"""
        from forgeline.workflow import CacheConfig, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep
        count = ProcessingStep(name="Count", code="count.py", cache_config=CacheConfig(enable_caching=True),
                               inputs=[ProcessingInput(source="s3://{s3_bucket}/raw", destination="data")],
                               outputs=[ProcessingOutput(output_name="count", source="out")])
        pipeline = Pipeline(name="cached", steps=[count])
    """))
    import boto3

    options = json.loads(ray_env["FORGELINE_STORAGE_OPTIONS"])["s3"]
    boto3.client("s3", endpoint_url=options["endpoint_url"]).put_object(Bucket=s3_bucket, Key="raw/a.csv",
                                                                         Body=b"1\n2\n3\n")
    cli = Cli(ray_env)
    first = cli("run", "pipeline.py", cwd=folder, timeout=DEADLINE_SECONDS)
    assert first.returncode == 0, first
    second = cli("run", "pipeline.py", cwd=folder, timeout=DEADLINE_SECONDS)
    assert second.returncode == 0, second
    listed = json.loads(cli("executions", "list", "--json", cwd=folder).stdout)
    latest = describe(cli, listed[0]["id"], folder)
    step = next(s for s in latest["steps"] if s["name"] == "Count")
    assert step["cache_source"] == listed[1]["id"], step  # reused: no job ran on Ray the second time
