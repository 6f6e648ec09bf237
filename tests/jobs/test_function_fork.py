"""A @step worker forked from the starting process: its keeper reports its pid and exit, one nobody adopts exits,
and it is not forked where forking is unsafe.

Each case runs in a fresh interpreter (a script), as a starting process would: this test process may hold
threads or SQLite files that rightly keep it from forking a worker.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

PRELUDE = """
import json, os, signal, sys, threading
from forgeline.jobs.function_fork import (ForkedWorkerProcess, fork_function_worker, offer, prepare_offered,
                                          take_offered, withdraw, worker_pid)
from forgeline.jobs.function_protocol import read_message, write_message

def running(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except OSError:
        return False
"""


def run_script(tmp_path: Path, body: str) -> Any:
    """Run PRELUDE + ``body`` in a new interpreter; the JSON it prints last."""
    script = tmp_path / "case.py"
    script.write_text(textwrap.dedent(PRELUDE) + textwrap.dedent(body))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_worker_nobody_prepared_exits_when_its_request_pipe_closes(tmp_path):
    result = run_script(tmp_path, """
        worker = fork_function_worker()
        pid = worker_pid(worker)
        process = ForkedWorkerProcess(pid, worker.status_fd)
        alive_before = process.poll() is None
        os.close(worker.request_fd)  # as when the starting process withdraws it and no orchestrator inherited it
        code = process.wait(timeout=60)
        print(json.dumps({"pid": pid, "alive_before": alive_before, "code": code, "gone": not running(pid),
                          "self": os.getpid()}))
    """)
    assert result["alive_before"] and result["pid"] != result["self"]
    assert result["code"] == 0 and result["gone"]


def test_a_withdrawn_worker_no_orchestrator_inherited_does_not_linger(tmp_path, wait_until):
    result = run_script(tmp_path, """
        worker = fork_function_worker()
        offer(worker)
        pid = worker_pid(worker)
        withdraw(worker)  # the orchestrator was spawned, not forked: nobody else holds the pipes
        print(json.dumps({"pid": pid, "offered_left": take_offered() is not None}))
    """)
    assert not result["offered_left"]
    wait_until(lambda: not _running(result["pid"]), timeout=60, what="the withdrawn worker to exit")


def test_the_keeper_reports_the_signal_that_killed_the_worker(tmp_path):
    result = run_script(tmp_path, """
        worker = fork_function_worker()
        pid = worker_pid(worker)
        process = ForkedWorkerProcess(pid, worker.status_fd)
        os.kill(pid, signal.SIGKILL)
        print(json.dumps({"code": process.wait(timeout=60), "polled": process.poll()}))
    """)
    assert result == {"code": -9, "polled": -9}


def test_wait_times_out_like_popen_while_the_worker_lives(tmp_path):
    result = run_script(tmp_path, """
        import subprocess
        worker = fork_function_worker()
        process = ForkedWorkerProcess(worker_pid(worker), worker.status_fd)
        try:
            process.wait(timeout=0.2)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        os.close(worker.request_fd)
        print(json.dumps({"timed_out": timed_out, "code": process.wait(timeout=60)}))
    """)
    assert result == {"timed_out": True, "code": 0}


def test_a_prepared_worker_serves_calls_in_the_orchestrators_folder_env_and_log(tmp_path):
    """What an orchestrator forked from the starter does: take the prepared offer and send calls."""
    (tmp_path / "served").mkdir()
    (tmp_path / "steps.py").write_text(textwrap.dedent("""
        import os, sys
        def where():
            print("to the step log")
            return {"cwd": os.getcwd(), "home": os.environ.get("FORGELINE_HOME"),
                    "worker": os.environ.get("FORGELINE_WORKER"), "sid": os.getsid(0), "pid": os.getpid()}
    """))
    result = run_script(tmp_path, f"""
        import pickle
        worker = fork_function_worker()
        offer(worker)
        prepare_offered({str(tmp_path / "served")!r}, {str(tmp_path / "orchestrator.log")!r},
                        {{"FORGELINE_HOME": "the-home"}})
        taken = take_offered()  # in the forked orchestrator, which inherited the offer
        pid = worker_pid(taken)
        job_dir = {str(tmp_path / "job")!r}
        os.makedirs(job_dir)
        write_message(taken.request_fd, {{
            "function": ("where", {str(tmp_path / "steps.py")!r}, None),
            "arguments": pickle.dumps(((), {{}})), "job_dir": job_dir, "log_path": job_dir + "/step.log",
            "working_dir": None, "code_root": None, "env": {{}}, "return_uri": None, "artifact_root": job_dir,
            "storage_options": {{}}}})
        reply = read_message(taken.reply_fd)
        os.close(taken.request_fd)
        code = ForkedWorkerProcess(pid, taken.status_fd).wait(timeout=60)
        print(json.dumps({{"reply": reply, "pid": pid, "code": code}}))
    """)
    assert result["reply"]["ok"], result
    returned = result["reply"]["properties"]["Return"]
    assert returned == {"cwd": str(tmp_path / "job"), "home": "the-home", "worker": "1", "sid": result["pid"],
                        "pid": result["pid"]}
    assert result["code"] == 0
    assert "to the step log" in (tmp_path / "job" / "step.log").read_text()
    assert (tmp_path / "orchestrator.log").exists()  # its stderr between calls


@pytest.mark.parametrize("hazard", ["thread", "sqlite"])
def test_no_worker_is_forked_where_forking_is_unsafe(tmp_path, hazard):
    result = run_script(tmp_path, f"""
        import sqlite3
        hazard = {hazard!r}
        if hazard == "thread":
            stop = threading.Event()
            thread = threading.Thread(target=stop.wait)
            thread.start()
        else:
            connection = sqlite3.connect("some.db")
            connection.execute("create table t (x)")
            connection.commit()
        forked = fork_function_worker()
        if hazard == "thread":
            stop.set()
            thread.join()
        else:
            connection.close()
        after = fork_function_worker()  # the hazard is gone: now it forks
        if after is not None:
            withdraw(after)
        print(json.dumps({{"forked": forked is not None, "after": after is not None}}))
    """)
    assert result == {"forked": False, "after": True}


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except OSError:
        return False

