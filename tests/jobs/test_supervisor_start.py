"""A job's supervisor, forked from the orchestrator or started by path: the same job, ended and recorded alike."""

from __future__ import annotations

import os
import signal
import sys
import threading

import pytest

from forgeline.jobs import supervisor_start
from forgeline.jobs.control import JobControl
from forgeline.jobs.process import read_exit_status, read_supervisor_pid, run_script

from .conftest import write


@pytest.fixture(params=["forked", "by path"])
def start_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "forked" and not sys.platform.startswith("linux"):
        pytest.skip("the supervisor is forked on Linux only")
    monkeypatch.setattr(supervisor_start, "FORK_SUPERVISOR", request.param == "forked")
    return str(request.param)


def test_either_way_the_script_runs_its_output_is_logged_and_its_exit_is_recorded(tmp_path, project, start_mode):
    script = write(project / "job.py", """
        import os, sys
        print("to stdout", os.environ["JOB_VALUE"], os.getcwd())
        print("to stderr", file=sys.stderr)
        sys.exit(3)
        """)
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    log = tmp_path / "job.log"
    ended = run_script([sys.executable, str(script)], cwd=job_dir, env={**os.environ, "JOB_VALUE": "seven"},
                       log_path=str(log), control=JobControl())
    assert ended.exit_code == 3 and ended.cause is None
    assert ended.stderr_tail == ["to stderr"]
    assert f"to stdout seven {job_dir}" in log.read_text()
    assert read_exit_status(job_dir) == 3
    assert read_supervisor_pid(job_dir) not in (None, os.getpid())


def test_a_script_that_cannot_start_exits_127_with_the_reason(tmp_path, start_mode):
    ended = run_script([str(tmp_path / "missing")], cwd=tmp_path, env=dict(os.environ),
                       log_path=str(tmp_path / "job.log"), control=JobControl())
    assert ended.exit_code == 127
    assert "could not start" in "\n".join(ended.stderr_tail)


def test_a_stop_ends_the_script_and_is_recorded_as_forgeline_s(tmp_path, project, start_mode, wait_until):
    script = write(project / "waits.py", """
        import time
        open("started", "w").close()
        time.sleep(60)
        """)
    control = JobControl()
    stopper = threading.Thread(target=lambda: (wait_until((tmp_path / "started").exists, what="the script"),
                                               control.stop(grace_seconds=5)))
    stopper.start()
    ended = run_script([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ),
                       log_path=str(tmp_path / "job.log"), control=control)
    stopper.join()
    assert ended.cause is not None and ended.cause.value == "Stopped"
    assert ended.exit_code == -signal.SIGTERM
    assert read_exit_status(tmp_path) == -signal.SIGTERM


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor is forked on Linux only")
def test_a_forked_supervisor_keeps_none_of_the_orchestrator_s_descriptors(tmp_path, project, wait_until):
    # Another job's pipe held open by this job's supervisor would keep that job's log capture from ending.
    other_read, other_write = os.pipe()
    os.set_inheritable(other_write, True)
    script = write(project / "waits.py", """
        import os, time
        open("started", "w").close()
        while not os.path.exists("release"):
            time.sleep(0.02)
        """)
    found: dict[str, list[str]] = {}

    def look_then_release() -> None:
        wait_until((tmp_path / "started").exists, what="the script to start")
        supervisor = read_supervisor_pid(tmp_path)
        found["fds"] = sorted(os.listdir(f"/proc/{supervisor}/fd"), key=int)
        found["targets"] = [os.readlink(f"/proc/{supervisor}/fd/{fd}") for fd in found["fds"]]
        (tmp_path / "release").write_text("")

    looker = threading.Thread(target=look_then_release)
    looker.start()
    try:
        ended = run_script([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ),
                           log_path=str(tmp_path / "job.log"), control=JobControl())
    finally:
        looker.join()
        own_pipe = os.readlink(f"/proc/self/fd/{other_write}")
        os.close(other_read)
        os.close(other_write)
    assert ended.exit_code == 0
    assert own_pipe not in found["targets"]
    # standard input, output and error, and the read ends of the script's two pipes: nothing else
    assert len(found["fds"]) == 5, found
