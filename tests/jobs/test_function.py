"""@step function jobs on a warm worker: return values, failures, logs, staging, env and worker death."""

from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path

import pytest

from forgeline.jobs.control import JobControl
from forgeline.jobs.function import run_function_job
from forgeline.jobs.function_loading import FunctionLoader
from forgeline.jobs.spec import FailureKind, FunctionRef, JobStatus, StagedInput

from .conftest import function_spec, write

STEPS = """
import dataclasses
import os
import signal
import subprocess
import sys


class StepWrapper:
    # Stands for what @step makes of a function: the original is `.func`, calling the wrapper is an error.
    def __init__(self, func):
        self.func = func

    def __call__(self, *args, **kwargs):
        raise RuntimeError("the wrapper was called instead of the function")


@dataclasses.dataclass
class Split:
    train: list
    test: list


def _add(a, b=0):
    print("adding", a, b)
    subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)
    return {"sum": a + b}


add = StepWrapper(_add)


def fail(message):
    raise ValueError(message)


def split(rows):
    return Split(train=rows[:-1], test=rows[-1:])


def count(split):
    return len(split.train) + len(split.test)


def context():
    with open("input/data/rows.txt") as data:
        rows = data.read()
    return {"cwd": os.getcwd(), "env": os.environ.get("SPLIT_RATIO"), "rows": rows}


def env_value():
    return os.environ.get("SPLIT_RATIO")


def pid():
    return os.getpid()


def die():
    os.kill(os.getpid(), signal.SIGKILL)


def big():
    return "x" * 70_000
"""


@pytest.fixture
def steps(project: Path) -> Path:
    return write(project / "steps.py", STEPS)


def run(spec, artifacts, workers):
    return run_function_job(spec, artifacts, workers, JobControl())


def test_the_return_value_is_stored_and_small_json_is_a_property(tmp_path, steps, artifacts, single_worker):
    uri = artifacts.uri("exec-1", "add", "return.pkl")
    spec = function_spec(tmp_path, steps, "add", 1, kwargs={"b": 2}, return_uri=uri)
    result = run(spec, artifacts, single_worker)
    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    assert result.properties == {"Return": {"sum": 3}, "ReturnUri": uri}
    assert pickle.loads(artifacts.read_bytes(uri)) == {"sum": 3}


def test_stdout_of_the_function_and_its_subprocesses_goes_to_the_step_log(tmp_path, steps, artifacts, single_worker):
    spec = function_spec(tmp_path, steps, "add", 1, 2)
    assert run(spec, artifacts, single_worker).status is JobStatus.SUCCEEDED
    log = Path(spec.log_path).read_text()
    assert "adding 1 2\n" in log
    assert "from a child process\n" in log


def test_an_exception_fails_the_job_with_its_type_and_message(tmp_path, steps, artifacts, single_worker):
    spec = function_spec(tmp_path, steps, "fail", "rows must not be empty")
    result = run(spec, artifacts, single_worker)
    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.JOB_FAILED
    assert result.failure_reason == "ValueError: rows must not be empty"
    log = Path(spec.log_path).read_text()
    assert "Traceback (most recent call last)" in log
    assert "ValueError: rows must not be empty" in log
    # the worker survives a failing function
    after = run(function_spec(tmp_path, steps, "pid", attempt=2), artifacts, single_worker)
    assert after.status is JobStatus.SUCCEEDED
    assert single_worker.spawned == 1


def test_a_function_runs_in_its_staged_job_directory_with_its_env(tmp_path, steps, artifacts, single_worker):
    write(tmp_path / "data" / "rows.txt", "1\n2\n")
    spec = function_spec(
        tmp_path,
        steps,
        "context",
        inputs=(StagedInput(str(tmp_path / "data"), "input/data"),),
        env={"SPLIT_RATIO": "0.8"},
    )
    result = run(spec, artifacts, single_worker)
    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    assert result.properties["Return"] == {"cwd": spec.job_dir, "env": "0.8", "rows": "1\n2\n"}
    # the next call on the same worker does not inherit the env of the previous one
    after = run(function_spec(tmp_path, steps, "env_value", attempt=2), artifacts, single_worker)
    assert after.properties["Return"] is None
    assert single_worker.spawned == 1


def test_objects_returned_by_one_step_feed_the_next(tmp_path, steps, artifacts, single_worker):
    uri = artifacts.uri("exec-1", "split", "return.pkl")
    first = run(function_spec(tmp_path, steps, "split", [1, 2, 3], return_uri=uri), artifacts, single_worker)
    assert first.status is JobStatus.SUCCEEDED, first.failure_reason
    assert "Return" not in first.properties  # a dataclass is not JSON: only stored
    value = FunctionLoader().loads(artifacts.read_bytes(uri))
    assert (value.train, value.test) == ([1, 2], [3])
    second = run(function_spec(tmp_path, steps, "count", value), artifacts, single_worker)
    assert second.properties["Return"] == 3


def test_a_large_return_value_is_only_stored(tmp_path, steps, artifacts, single_worker):
    uri = artifacts.uri("exec-1", "big", "return.pkl")
    result = run(function_spec(tmp_path, steps, "big", return_uri=uri), artifacts, single_worker)
    assert result.properties == {"ReturnUri": uri}


def test_a_missing_function_fails_with_a_clear_reason(tmp_path, steps, artifacts, single_worker):
    result = run(function_spec(tmp_path, steps, "nope"), artifacts, single_worker)
    assert result.failure_kind is FailureKind.JOB_FAILED
    assert result.failure_reason == f"AttributeError: {steps} has no attribute 'nope'"


def test_a_worker_dying_mid_call_interrupts_the_job_and_is_replaced(tmp_path, steps, artifacts, single_worker):
    result = run(function_spec(tmp_path, steps, "die"), artifacts, single_worker)
    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.INTERRUPTED
    assert result.failure_reason is not None and "killed by signal SIGKILL" in result.failure_reason
    again = run(function_spec(tmp_path, steps, "pid", attempt=2), artifacts, single_worker)
    assert again.status is JobStatus.SUCCEEDED
    assert single_worker.spawned == 2
    assert again.properties["Return"] != os.getpid()


def test_a_function_module_is_imported_by_name(tmp_path, project, artifacts, single_worker):
    write(project / "mysteps" / "__init__.py", "")
    write(project / "mysteps" / "prep.py", "def double(x):\n    return 2 * x\n")
    spec = function_spec(tmp_path, project / "unused.py", "double", 21)
    spec = dataclasses.replace(spec, function=FunctionRef("double", module="mysteps.prep"))
    result = run(spec, artifacts, single_worker)
    assert result.properties["Return"] == 42, result.failure_reason


def test_a_warm_worker_picks_up_edited_user_code(tmp_path, project, artifacts, single_worker):
    helper = write(project / "helper.py", "VALUE = 1\n")
    steps = write(project / "flow.py", "import helper\n\ndef value():\n    return helper.VALUE\n")
    first = run(function_spec(tmp_path, steps, "value"), artifacts, single_worker)
    write(helper, "VALUE = 2\n")
    os.utime(helper, ns=(helper.stat().st_mtime_ns + 10**9,) * 2)  # a visible change even on coarse clocks
    second = run(function_spec(tmp_path, steps, "value", attempt=2), artifacts, single_worker)
    assert (first.properties["Return"], second.properties["Return"]) == (1, 2)
    assert single_worker.spawned == 1


def test_what_a_function_changes_in_env_and_sys_path_does_not_leak(tmp_path, project, artifacts, single_worker):
    steps = write(
        project / "leaky.py",
        """
        import os, sys

        def leak():
            os.environ["LEAKED"] = "yes"
            sys.path.append("/leaked")

        def look():
            return {"env": os.environ.get("LEAKED"), "path": "/leaked" in sys.path}
        """,
    )
    assert run(function_spec(tmp_path, steps, "leak"), artifacts, single_worker).status is JobStatus.SUCCEEDED
    after = run(function_spec(tmp_path, steps, "look", attempt=2), artifacts, single_worker)
    assert after.properties["Return"] == {"env": None, "path": False}
