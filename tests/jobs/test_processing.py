"""Processing jobs run real scripts: exit codes, inputs, outputs, property files, env, timeouts and stops."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from forgeline.jobs.control import JobControl
from forgeline.jobs.processing import run_processing_job
from forgeline.jobs.spec import (
    CollectedOutput,
    FailureKind,
    JobResult,
    JobSpec,
    JobStatus,
    PropertyFileSpec,
    StagedInput,
)
from forgeline.store.artifacts import ArtifactStore

from .conftest import processing_spec, write


def run(spec: JobSpec, artifacts: ArtifactStore, control: JobControl | None = None) -> JobResult:
    return run_processing_job(spec, artifacts, control or JobControl(), timeout_grace_seconds=1.0)


def wait_for(path: Path, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().endswith("\n"):
            return path.read_text().strip()
        time.sleep(0.01)
    raise AssertionError(f"{path} was not written within {timeout} s")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_failing_script_reports_its_exit_code_and_the_tail_of_its_stderr(tmp_path, project, artifacts):
    code = write(
        project / "prepare.py",
        """
        import sys
        print("starting")
        for i in range(30):
            print(f"problem {i}", file=sys.stderr)
        sys.exit(3)
        """,
    )
    result = run(processing_spec(tmp_path, code), artifacts)
    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.JOB_FAILED
    assert result.exit_code == 3
    assert result.failure_reason is not None
    assert result.failure_reason.startswith("script prepare.py exited with code 3: ")
    assert "problem 29" in result.failure_reason
    assert "problem 9\n" not in result.failure_reason  # only the last 20 lines
    log = Path(tmp_path / "logs" / "step.log").read_text()
    assert "starting" in log and "problem 0" in log and "problem 29" in log


def test_outputs_are_collected_and_a_missing_optional_one_is_stored_empty(tmp_path, project, artifacts):
    code = write(
        project / "train.py",
        """
        from pathlib import Path
        Path("output/model/model.txt").write_text("weights")  # the output folder exists already
        """,
    )
    spec = processing_spec(
        tmp_path,
        code,
        outputs=(
            CollectedOutput("model", "output/model", artifacts.uri("exec-1", "train", "model")),
            CollectedOutput("unused", "output/unused", artifacts.uri("exec-1", "train", "unused"), optional=True),
        ),
    )
    result = run(spec, artifacts)
    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    assert result.exit_code == 0
    assert set(result.outputs) == {"model", "unused"}
    artifacts.get(result.outputs["model"], str(tmp_path / "downloaded"))
    assert (tmp_path / "downloaded" / "model.txt").read_text() == "weights"


def test_folder_file_and_artifact_inputs_are_staged_in_the_job_directory(tmp_path, project, artifacts):
    data = tmp_path / "data"
    write(data / "train.csv", "a,b\n")
    write(data / "nested" / "test.csv", "c,d\n")
    write(project / "config.json", "{}")
    write(tmp_path / "stored" / "labels.txt", "labels")
    labels_uri = artifacts.put(str(tmp_path / "stored" / "labels.txt"), artifacts.uri("exec-0", "labels.txt"))
    code = write(
        project / "check.py",
        """
        from pathlib import Path
        expected = ["input/data/train.csv", "input/data/nested/test.csv", "input/config/config.json",
                    "input/labels/labels.txt", "settings/config.json"]
        missing = [path for path in expected if not Path(path).is_file()]
        assert not missing, missing
        """,
    )
    spec = processing_spec(
        tmp_path,
        code,
        inputs=(
            StagedInput(str(data), "input/data"),
            StagedInput("config.json", "input/config"),  # relative to the working dir; lands inside
            StagedInput(labels_uri, "input/labels"),
            StagedInput("config.json", "settings/config.json"),  # destination names the file itself
        ),
    )
    result = run(spec, artifacts)
    assert result.status is JobStatus.SUCCEEDED, (result.failure_reason, (tmp_path / "logs/step.log").read_text())


def test_a_missing_local_input_fails_the_job_as_the_users_to_fix(tmp_path, project, artifacts):
    code = write(project / "noop.py", "")
    missing = str(tmp_path / "nowhere")
    result = run(processing_spec(tmp_path, code, inputs=(StagedInput(missing, "input/data"),)), artifacts)
    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.JOB_FAILED
    assert result.failure_reason == f"input 'input/data': {missing} does not exist"


def test_a_missing_artifact_input_fails_as_an_infrastructure_error(tmp_path, project, artifacts):
    code = write(project / "noop.py", "")
    uri = artifacts.uri("exec-0", "gone")
    result = run(processing_spec(tmp_path, code, inputs=(StagedInput(uri, "input/data"),)), artifacts)
    assert result.failure_kind is FailureKind.INFRASTRUCTURE_ERROR
    assert result.failure_reason == f"input 'input/data': {uri} does not exist"


def test_code_in_a_source_dir_runs_from_a_copy_and_imports_its_siblings(tmp_path, project, artifacts):
    write(project / "src" / "helpers.py", "ANSWER = 42\n")
    code = write(project / "src" / "jobs" / "main.py", "import helpers\nprint(__file__, helpers.ANSWER)\n")
    result = run(processing_spec(tmp_path, code, source_dir=str(project / "src")), artifacts)
    assert result.status is JobStatus.SUCCEEDED, result.failure_reason
    log = (tmp_path / "logs" / "step.log").read_text()
    assert f"{tmp_path / 'jobs' / 'step' / 'code' / 'jobs' / 'main.py'} 42" in log


PROPERTY_SCRIPT = """
import sys
from pathlib import Path
if sys.argv[1] == "valid":
    Path("output/evaluation/evaluation.json").write_text('{"metrics": {"accuracy": 0.93}}')
elif sys.argv[1] == "invalid":
    Path("output/evaluation/evaluation.json").write_text("accuracy=0.93")
"""


@pytest.mark.parametrize(
    ("mode", "status", "reason"),
    [
        ("valid", JobStatus.SUCCEEDED, None),
        (
            "invalid",
            JobStatus.FAILED,
            "property file 'Evaluation' (evaluation.json in output 'evaluation') is not valid JSON: ",
        ),
        (
            "missing",
            JobStatus.FAILED,
            "property file 'Evaluation' (evaluation.json in output 'evaluation') was not written by the job",
        ),
    ],
)
def test_property_files_are_parsed_into_properties(tmp_path, project, artifacts, mode, status, reason):
    code = write(project / "evaluate.py", PROPERTY_SCRIPT)
    spec = processing_spec(
        tmp_path,
        code,
        arguments=(mode,),
        outputs=(CollectedOutput("evaluation", "output/evaluation", artifacts.uri("exec-1", "evaluation")),),
        property_files=(PropertyFileSpec("Evaluation", "evaluation", "evaluation.json"),),
    )
    result = run(spec, artifacts)
    assert result.status is status
    if reason is None:
        assert result.properties == {"PropertyFiles": {"Evaluation": {"metrics": {"accuracy": 0.93}}}}
    else:
        assert result.failure_kind is FailureKind.JOB_FAILED
        assert result.failure_reason is not None and result.failure_reason.startswith(reason)


def test_env_vars_and_arguments_reach_the_script(tmp_path, project, artifacts):
    code = write(
        project / "env.py",
        """
        import os, sys
        assert os.environ["LEARNING_RATE"] == "0.1", os.environ.get("LEARNING_RATE")
        assert os.environ["PYTHONUNBUFFERED"] == "1"
        assert sys.argv[1:] == ["--epochs", "3"], sys.argv
        """,
    )
    spec = processing_spec(tmp_path, code, env={"LEARNING_RATE": "0.1"}, arguments=("--epochs", "3"))
    result = run(spec, artifacts)
    assert result.status is JobStatus.SUCCEEDED, result.failure_reason


def test_a_job_past_its_max_run_time_is_killed_as_a_timeout(tmp_path, project, artifacts):
    code = write(project / "slow.py", "import time\ntime.sleep(30)\n")
    result = run(processing_spec(tmp_path, code, max_run_seconds=0.5), artifacts)
    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.TIMEOUT
    assert result.failure_reason is not None
    assert result.failure_reason.startswith("MaxRuntimeExceeded: job ran longer than 0.5 s")


def test_stopping_a_running_job_ends_its_whole_process_group(tmp_path, project, artifacts):
    code = write(
        project / "sleepy.py",
        """
        import os, subprocess, time
        child = subprocess.Popen(["sleep", "30"])
        with open("pgid.txt", "w") as out:
            out.write(f"{os.getpgid(0)}\\n")
        time.sleep(30)
        """,
    )
    spec = processing_spec(tmp_path, code)
    control = JobControl()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run, spec, artifacts, control)
        pgid = int(wait_for(Path(spec.job_dir) / "pgid.txt"))
        assert group_alive(pgid)
        control.stop(grace_seconds=1.0)
        result = future.result(timeout=10)
    assert result.status is JobStatus.STOPPED
    deadline = time.monotonic() + 3
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not group_alive(pgid)


def test_a_stop_that_is_ignored_is_forced_after_the_grace_period(tmp_path, project, artifacts, wait_until):
    code = write(
        project / "stubborn.py",
        """
        import os, signal, time
        signal.signal(signal.SIGTERM, lambda *_: open("got-sigterm.txt", "w").close())  # noted, then ignored
        with open("ready.txt", "w") as out:
            out.write(f"{os.getpid()}\\n")
        time.sleep(30)
        """,
    )
    spec = processing_spec(tmp_path, code)
    control = JobControl()
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run, spec, artifacts, control)
        pid = int(wait_for(Path(spec.job_dir) / "ready.txt"))
        control.stop(grace_seconds=0.3)
        result = future.result(timeout=10)
    assert (Path(spec.job_dir) / "got-sigterm.txt").exists()  # asked politely first, and it carried on...
    assert result.status is JobStatus.STOPPED  # ...until the SIGKILL after the grace period ended it
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), timeout=10, what="the killed script to be reaped")


def test_a_stop_before_the_job_starts_never_spawns_it(tmp_path, project, artifacts):
    code = write(project / "never.py", "open('ran.txt', 'w').close()\n")
    control = JobControl()
    control.stop()
    result = run(processing_spec(tmp_path, code), artifacts, control)
    assert result.status is JobStatus.STOPPED
    assert not (tmp_path / "jobs" / "step" / "ran.txt").exists()


def test_a_script_killed_from_outside_is_interrupted(tmp_path, project, artifacts):
    code = write(
        project / "victim.py",
        """
        import os, time
        with open("pid.txt", "w") as out:
            out.write(f"{os.getpid()}\\n")
        time.sleep(30)
        """,
    )
    spec = processing_spec(tmp_path, code)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run, spec, artifacts)
        os.kill(int(wait_for(Path(spec.job_dir) / "pid.txt")), signal.SIGKILL)
        result = future.result(timeout=10)
    assert result.status is JobStatus.FAILED
    assert result.failure_kind is FailureKind.INTERRUPTED
    assert result.failure_reason is not None
    assert result.failure_reason.startswith("script victim.py was killed by signal SIGKILL")


def test_log_lines_stream_to_the_log_file_while_the_job_runs(tmp_path, project, artifacts):
    code = write(
        project / "chatty.py",
        """
        import time
        from pathlib import Path
        print("first line")
        while not Path("go.txt").exists():
            time.sleep(0.01)
        """,
    )
    spec = processing_spec(tmp_path, code)
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(run, spec, artifacts)
        log = Path(spec.log_path)
        deadline = time.monotonic() + 10
        while not (log.exists() and "first line" in log.read_text()):
            assert time.monotonic() < deadline, "the first line never reached the log"
            time.sleep(0.01)
        (Path(spec.job_dir) / "go.txt").touch()
        assert future.result(timeout=10).status is JobStatus.SUCCEEDED


def test_stop_and_deadline_cannot_fire_after_the_job_ended(tmp_path, project, artifacts):
    code = write(project / "quick.py", "")
    control = JobControl()
    # the deadline is far beyond what an empty script needs, even on a loaded machine; the test then waits past it
    deadline = time.monotonic() + 3.0
    result = run(processing_spec(tmp_path, code, max_run_seconds=3.0), artifacts, control)
    assert result.status is JobStatus.SUCCEEDED
    control.stop()
    time.sleep(max(0.0, deadline - time.monotonic()) + 0.3)
    assert control.cause is None
