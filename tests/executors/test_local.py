"""LocalExecutor runs processing scripts and @step functions in parallel, and stops either kind on request."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from forgeline.errors import JobError
from forgeline.executors.local import LocalExecutor
from forgeline.jobs.spec import FailureKind, JobSpec, JobStatus

from .conftest import write

TIMESTAMPS = """
import json, sys, time
start = time.time()
time.sleep(0.5)
with open("times.json", "w") as out:
    json.dump([start, time.time()], out)
"""


def wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} was not written within {timeout} s")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_processing_jobs_really_run_in_parallel(project, specs, executor):
    code = write(project / "timed.py", TIMESTAMPS)
    first, second = specs.processing(code), specs.processing(code)
    refs = [executor.submit(first), executor.submit(second)]
    results = [executor.wait(ref, timeout=10) for ref in refs]
    assert all(result.status is JobStatus.SUCCEEDED for result in results)
    (start_a, end_a), (start_b, end_b) = (
        json.loads((Path(spec.job_dir) / "times.json").read_text()) for spec in (first, second)
    )
    assert start_a < end_b and start_b < end_a


def test_a_function_job_runs_on_a_warm_worker(steps, specs, executor, artifacts):
    uri = artifacts.uri("exec-1", "pid", "return.pkl")
    first = executor.wait(executor.submit(specs.function(steps, "pid", return_uri=uri)), timeout=10)
    second = executor.wait(executor.submit(specs.function(steps, "pid")), timeout=10)
    assert first.status is JobStatus.SUCCEEDED, first.failure_reason
    assert first.properties["ReturnUri"] == uri
    assert first.properties["Return"] == second.properties["Return"]  # no new process for the second call


def test_stopping_a_processing_job(project, specs, executor):
    code = write(project / "sleepy.py", "import time\nopen('ready.txt', 'w').write('ready\\n')\ntime.sleep(30)\n")
    spec = specs.processing(code)
    ref = executor.submit(spec)
    wait_for(Path(spec.job_dir) / "ready.txt")
    executor.cancel(ref, grace_seconds=1.0)
    assert executor.wait(ref, timeout=10).status is JobStatus.STOPPED


def test_stopping_a_function_job_kills_its_worker_which_is_replaced(steps, specs, executor):
    spec = specs.function(steps, "sleep", 30)
    ref = executor.submit(spec)
    worker_pid = int(wait_for(Path(spec.job_dir) / "ready.txt"))
    executor.cancel(ref, grace_seconds=1.0)
    result = executor.wait(ref, timeout=10)
    assert result.status is JobStatus.STOPPED
    assert not alive(worker_pid)
    after = executor.wait(executor.submit(specs.function(steps, "pid")), timeout=10)
    assert after.status is JobStatus.SUCCEEDED
    assert after.properties["Return"] != worker_pid


def test_a_function_past_its_max_run_time_times_out(steps, specs, executor):
    result = executor.wait(executor.submit(specs.function(steps, "sleep", 30, max_run_seconds=0.3)), timeout=10)
    assert result.failure_kind is FailureKind.TIMEOUT
    assert result.failure_reason is not None
    assert result.failure_reason.startswith("MaxRuntimeExceeded: job ran longer than 0.3 s")


def test_a_queued_job_stopped_before_it_starts_never_runs(project, specs, artifacts):
    executor = LocalExecutor(artifacts, max_parallel=1)
    try:
        blocker = write(project / "blocker.py", "import time\ntime.sleep(0.3)\n")
        never = write(project / "never.py", "open('ran.txt', 'w').close()\n")
        first = executor.submit(specs.processing(blocker))
        queued_spec = specs.processing(never)
        queued = executor.submit(queued_spec)
        executor.cancel(queued)
        assert executor.wait(queued, timeout=10).status is JobStatus.STOPPED
        assert executor.wait(first, timeout=10).status is JobStatus.SUCCEEDED
        assert not (Path(queued_spec.job_dir) / "ran.txt").exists()
    finally:
        executor.shutdown()


def test_an_unknown_job_kind_is_refused_naming_the_kinds(tmp_path):
    with pytest.raises(JobError, match=r"job e/s/1: unknown job kind 'telepathy' \(kinds: processing, training, function\)"):
        JobSpec(kind="telepathy", job_id="e/s/1", job_dir=str(tmp_path / "j"), log_path=str(tmp_path / "l"))


def test_shutdown_stops_running_jobs(project, specs, artifacts):
    executor = LocalExecutor(artifacts, max_parallel=2)
    code = write(project / "sleepy.py", "import time\nopen('ready.txt', 'w').write('ready\\n')\ntime.sleep(30)\n")
    spec = specs.processing(code)
    ref = executor.submit(spec)
    wait_for(Path(spec.job_dir) / "ready.txt")
    executor.shutdown(grace_seconds=1.0)
    assert executor.poll(ref).status is JobStatus.STOPPED
