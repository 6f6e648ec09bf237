"""An execution outlives whoever started it, and can be stopped from anywhere."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from conftest import with_ctrl_c
from forgeline.engine.execution import PipelineExecution

SLOW_PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingOutput, ProcessingStep

    work = ProcessingStep(name="Work", code="work.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    after = ProcessingStep(name="After", code="work.py", depends_on=[work],
                           outputs=[ProcessingOutput(output_name="out", source="out")])
    pipeline = Pipeline(name="slow", steps=[work, after])
"""

WORK = """
    import os, time
    from pathlib import Path
    Path("out/pid.txt").write_text(str(os.getpid()))
    Path({pid_file!r}).write_text(str(os.getpid()))
    print("working", flush=True)
    time.sleep({seconds})
    Path("out/done.txt").write_text("done")
"""

LAUNCHER = """
    import sys, time
    from pipeline import pipeline

    if __name__ == "__main__":
        execution = pipeline.start()
        print(execution.id, execution.status.value, flush=True)
        if sys.argv[1:] == ["--linger"]:
            time.sleep(60)
"""


def slow_project(project, seconds: float):
    project.write("work.py", WORK.format(seconds=seconds, pid_file=str(project.root / "pid.txt")))
    project.write("pipeline.py", SLOW_PIPELINE)
    project.write("launch.py", LAUNCHER)
    return project


def test_start_returns_at_once(project):
    slow_project(project, 30)
    pipeline = project.load()

    returned: list[PipelineExecution] = []
    starter = threading.Thread(target=lambda: returned.append(pipeline.start()), daemon=True)
    starter.start()
    starter.join(60)  # a deadline, not a measurement: a start that waited for the run would miss it

    assert returned, "start() did not return while the 30 s step ran"
    execution = returned[0]
    assert execution.status == "Executing"
    assert {s.name: s.status.value for s in execution.list_steps()}["After"] == "Pending"
    execution.stop()
    assert execution.wait(timeout=15) == "Stopped"


def test_the_execution_completes_after_its_caller_exited(project):
    slow_project(project, 1.0)

    caller = subprocess.run([sys.executable, "launch.py"], cwd=project.root, capture_output=True, text=True,
                            timeout=60)

    assert caller.returncode == 0, caller.stderr
    execution_id, status_at_return = caller.stdout.split()
    assert status_at_return == "Executing"
    execution = PipelineExecution.get(execution_id)
    assert execution.status == "Executing"  # the caller is gone, the run goes on

    assert execution.wait(timeout=60) == "Succeeded"
    steps = {s.name: s for s in execution.list_steps()}
    assert steps["Work"].status == "Succeeded" and steps["After"].status == "Succeeded"
    assert project.read_output(steps["After"].outputs["out"], "done.txt") == "done"


def test_the_execution_completes_when_its_caller_is_killed(project):
    slow_project(project, 1.0)
    caller = subprocess.Popen([sys.executable, "launch.py", "--linger"], cwd=project.root, text=True,
                              stdout=subprocess.PIPE, start_new_session=True)
    try:
        execution_id = caller.stdout.readline().split()[0]
    finally:
        os.killpg(caller.pid, signal.SIGKILL)  # the caller's whole process group, as a closed terminal would
        caller.wait(timeout=10)
        caller.stdout.close()

    execution = PipelineExecution.get(execution_id)
    assert execution.wait(timeout=60) == "Succeeded"


def wait_for_work(project, execution, wait_until) -> int:
    """Wait until the Work script is running and return its process id."""
    pid_file = project.root / "pid.txt"

    def running():
        step = {s.name: s for s in execution.list_steps()}["Work"]
        return step.status == "Executing" and pid_file.exists() and pid_file.read_text()

    return int(wait_until(running, timeout=30, what="the Work step to run"))


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("how", ["cli", "python"])
def test_stopping_a_running_execution(project, cli, wait_until, how):
    slow_project(project, 30)
    execution = project.load().start()
    pid = wait_for_work(project, execution, wait_until)

    if how == "cli":
        stopped = cli("executions", "stop", execution.id, cwd=project.root)
        assert stopped.returncode == 0, stopped
        assert execution.id in stopped.stdout and ("Stopping" in stopped.stdout or "Stopped" in stopped.stdout)
    else:
        assert execution.stop() in ("Stopping", "Stopped")
    assert execution.wait(timeout=30) == "Stopped"

    steps = {s.name: s for s in execution.list_steps()}
    assert steps["Work"].status == "Stopped"
    assert steps["Work"].ended_at is not None
    assert steps["Work"].outputs == {}
    assert steps["After"].status in ("Skipped", "Stopped")
    assert steps["After"].started_at is None
    wait_until(lambda: process_gone(pid), timeout=5, what=f"the Work script (pid {pid}) to end")

    described = cli("executions", "describe", execution.id, cwd=project.root)
    assert "Stopped" in described.stdout, described


def test_ctrl_c_during_forgeline_run_stops_the_execution(project, forgeline_home, wait_until):
    slow_project(project, 30)
    watcher = subprocess.Popen(with_ctrl_c([sys.executable, "-m", "forgeline.cli.main", "run", "pipeline.py"]),
                               cwd=project.root, env={**os.environ, "COLUMNS": "200"}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        [record] = wait_until(lambda: project.store().list_executions(), timeout=30, what="the execution")
        execution = PipelineExecution.get(record.id)
        wait_for_work(project, execution, wait_until)

        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=30)
    finally:
        if watcher.poll() is None:
            watcher.kill()
            watcher.communicate()

    assert watcher.returncode != 0
    assert "Traceback" not in out + err, out + err
    assert execution.wait(timeout=15) == "Stopped"
    assert {s.name: s.status.value for s in execution.list_steps()}["Work"] == "Stopped"
