"""A server's queue launcher, run for real: `QueueLauncher.run_forever` in launcher processes of their own.

Two launcher processes on one database (SQLite, then PostgreSQL) share a queue: each execution is launched by
one of them, once, and no more than max_running run at a time. Orchestrators outlive a launcher killed with
SIGKILL. Executions whose orchestrator is lost are resumed or failed as FORGELINE_AUTO_RESUME says, a lost
Stopping one ends Stopped, and one a launcher claimed but never started is launched again after its lease.

Launchers log each launch (``execution <id> launched (epoch N, ...)``) on stderr; steps report through files.
Every wait is on a status, a file or a log line.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import job_process_group
from forgeline.engine.code_snapshot import save_code_snapshot
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.launch import create_execution
from forgeline.engine.liveness import process_alive
from forgeline.engine.runtime import Runtime

LAUNCHER = """
import logging, signal, sys, threading
from forgeline.engine.launch import QueueLauncher
from forgeline.engine.runtime import Runtime

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
QueueLauncher(Runtime.from_env(), int(sys.argv[1])).run_forever(stop, poll_seconds=0.05)
"""

# Counts the steps running at once under a lock, keeps the highest count, and notes which execution ran.
COUNTED = """
    import fcntl, sys, time
    from pathlib import Path
    root = Path(sys.argv[2])

    def change(by):
        with open(root / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            running = int((root / "running").read_text() or 0) if (root / "running").exists() else 0
            running += by
            (root / "running").write_text(str(running))
            peak = int((root / "peak").read_text()) if (root / "peak").exists() else 0
            (root / "peak").write_text(str(max(peak, running)))
            if by > 0:
                with open(root / "ran.log", "a") as ran:
                    ran.write(sys.argv[1] + "\\n")

    change(+1)
    time.sleep(0.3)  # long enough for the others to start if the limit let them
    change(-1)
"""

COUNTED_PIPELINE = """
    from forgeline.workflow import ExecutionVariables, ParameterString, Pipeline, ProcessingStep

    root = ParameterString("Root")
    pipeline = Pipeline(name="counted", parameters=[root], steps=[
        ProcessingStep(name="Count", code="counted.py",
                       arguments=[ExecutionVariables.PIPELINE_EXECUTION_ID, root])])
"""

# Waits in its first attempt for a release file (the job folder is named after the attempt), says it started.
GATED = """
    import os, sys, time
    from pathlib import Path
    gate = Path(sys.argv[1])
    Path(str(gate) + ".started").write_text(str(os.getpid()))
    while Path.cwd().name == "1" and not gate.exists():
        time.sleep(0.02)
"""

GATED_PIPELINE = """
    from forgeline.workflow import ParameterString, Pipeline, ProcessingStep

    gate = ParameterString("Gate")
    pipeline = Pipeline(name="gated", parameters=[gate], steps=[
        ProcessingStep(name="Wait", code="gated.py", arguments=[gate])])
"""

LAUNCHED = re.compile(r"execution (\w+) launched \(epoch (\d+)")


class LauncherProcess:
    """A `QueueLauncher.run_forever` in a process of its own, with its stderr in a file."""

    def __init__(self, root: Path, name: str, max_running: int, env: dict[str, str]) -> None:
        self.log = root / f"{name}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(max_running)], cwd=root,
                                            env=env, stdout=log, stderr=subprocess.STDOUT)

    def launched(self) -> list[str]:
        """Ids of the executions it launched, in order."""
        return [match.group(1) for match in LAUNCHED.finditer(self.log.read_text())]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)


@pytest.fixture
def launchers(project) -> Iterator[list[LauncherProcess]]:
    """Start launchers with ``start(name, max_running, **env)``; every one is stopped after the test."""
    started: list[LauncherProcess] = []
    yield started
    for launcher in started:
        launcher.stop()


def start(launchers: list[LauncherProcess], root: Path, name: str, max_running: int,
          **env: str) -> LauncherProcess:
    launcher = LauncherProcess(root, name, max_running, {**os.environ, **env})
    launchers.append(launcher)
    return launcher


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, project, monkeypatch) -> str:
    """The metadata database the launchers share: the test's SQLite file, or a fresh PostgreSQL database."""
    if request.param == "postgresql":
        monkeypatch.setenv("FORGELINE_DATABASE_URL", request.getfixturevalue("postgres_database_url"))
    return request.param


def test_two_launcher_processes_run_each_queued_execution_once_and_at_most_max_running_at_once(
        database, project, launchers, wait_until):
    project.write("counted.py", COUNTED)
    project.write("pipeline.py", COUNTED_PIPELINE)
    pipeline = project.load()
    queued = [pipeline.start(parameters={"Root": str(project.root)}, queued=True) for _ in range(12)]

    first = start(launchers, project.root, "first", max_running=3)
    second = start(launchers, project.root, "second", max_running=3)

    assert [e.wait(timeout=300).value for e in queued] == ["Succeeded"] * 12
    launched = first.launched() + second.launched()
    assert sorted(launched) == sorted(e.id for e in queued), (first.log.read_text(), second.log.read_text())
    assert Counter((project.root / "ran.log").read_text().split()) == Counter(e.id for e in queued)
    assert {e.record().epoch for e in queued} == {1}  # claimed once each, never taken over
    assert 1 <= int((project.root / "peak").read_text()) <= 3


def test_orchestrators_outlive_their_launcher_killed_with_sigkill(project, launchers, wait_until):
    project.write("gated.py", GATED)
    project.write("pipeline.py", GATED_PIPELINE)
    gate = project.root / "release"
    execution = project.load().start(parameters={"Gate": str(gate)}, queued=True)
    launcher = start(launchers, project.root, "launcher", max_running=1)
    wait_until(gate.with_name("release.started").exists, timeout=90, what="the step to start")

    launcher.process.kill()
    launcher.process.wait(timeout=30)
    gate.write_text("")

    assert execution.wait(timeout=90).value == "Succeeded"
    assert launcher.launched() == [execution.id]


def ended(execution: PipelineExecution, wait_until, timeout: float = 120) -> str:
    """The execution's final status, read as stored: the launcher, not this reader, deals with a lost one."""
    return wait_until(lambda: execution.record().status.is_terminal and execution.record().status.value,
                      timeout=timeout, what=f"execution {execution.id} to end")


def kill_orchestrator(execution: PipelineExecution, wait_until) -> None:
    pid = wait_until(lambda: execution.record().orchestrator_pid, timeout=60, what="the orchestrator's pid")
    os.kill(pid, signal.SIGKILL)


def test_a_lost_orchestrator_is_resumed_when_auto_resume_is_on(project, launchers, wait_until):
    project.write("gated.py", GATED)
    project.write("pipeline.py", GATED_PIPELINE)
    gate = project.root / "never-released"
    execution = project.load().start(parameters={"Gate": str(gate)}, queued=True)
    launcher = start(launchers, project.root, "launcher", max_running=1, FORGELINE_AUTO_RESUME="1")
    wait_until(gate.with_name(gate.name + ".started").exists, timeout=90, what="the step to start")

    kill_orchestrator(execution, wait_until)

    assert ended(execution, wait_until) == "Succeeded"  # attempt 2 does not wait for the gate
    first, second = execution.list_attempts("Wait")
    assert (first.status.value, first.failure_kind) == ("Failed", "Interrupted")
    assert second.status.value == "Succeeded"
    assert launcher.launched() == [execution.id, execution.id]
    assert execution.record().epoch == 3  # the queue claim, the claim of the lost execution, and its resume


def test_a_lost_orchestrator_fails_its_execution_when_auto_resume_is_off_and_retry_reruns_it(
        project, launchers, cli, wait_until):
    project.write("gated.py", GATED)
    project.write("pipeline.py", GATED_PIPELINE)
    gate = project.root / "release"
    execution = project.load().start(parameters={"Gate": str(gate)}, queued=True)
    start(launchers, project.root, "launcher", max_running=1, FORGELINE_AUTO_RESUME="0")
    wait_until(gate.with_name("release.started").exists, timeout=90, what="the step to start")
    job = wait_until(lambda: job_process_group(execution, "Wait"), timeout=30, what="the job's process group")

    kill_orchestrator(execution, wait_until)

    assert ended(execution, wait_until) == "Failed"
    reason = execution.failure_reason or ""
    assert "orchestrator was lost" in reason and "FORGELINE_AUTO_RESUME is off" in reason, reason
    assert f"forgeline executions retry {execution.id}" in reason, reason
    [attempt] = execution.list_attempts("Wait")
    assert (attempt.status.value, attempt.failure_kind) == ("Failed", "Interrupted")
    assert execution.list_steps()[0].status.value == "Failed"
    wait_until(lambda: not process_alive(job), timeout=30, what="the orphaned job to be ended")
    assert [e.status for e in execution.events() if e.kind.value == "execution"][-1] == "Failed"

    gate.write_text("")
    retried = cli("executions", "retry", execution.id, cwd=project.root)
    assert retried.returncode == 0, retried
    assert execution.wait(timeout=90).value == "Succeeded"


def test_a_stopping_execution_whose_orchestrator_is_lost_ends_stopped_and_the_old_one_stands_down(
        project, launchers, wait_until, monkeypatch):
    monkeypatch.setenv("FORGELINE_ORCHESTRATOR_TIMEOUT", "3")
    project.write("gated.py", GATED)
    project.write("pipeline.py", GATED_PIPELINE)
    gate = project.root / "never-released"
    execution = project.load().start(parameters={"Gate": str(gate)}, queued=True)
    start(launchers, project.root, "launcher", max_running=1)
    wait_until(gate.with_name(gate.name + ".started").exists, timeout=90, what="the step to start")
    pid = wait_until(lambda: execution.record().orchestrator_pid, timeout=60, what="the orchestrator's pid")

    os.kill(pid, signal.SIGSTOP)  # alive but silent: lost once its heartbeat is older than the timeout
    try:
        assert execution.stop().value == "Stopping"
        assert ended(execution, wait_until) == "Stopped"
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "orchestrator was lost" in (execution.failure_reason or "")
    assert execution.list_steps()[0].status.value == "Stopped"
    wait_until(lambda: not process_alive(pid), timeout=60, what="the old orchestrator to stand down")
    assert execution.record().status.value == "Stopped"  # it wrote nothing when it woke up


def test_an_execution_whose_caller_died_between_its_insert_and_its_launch_is_run_by_the_launcher(
        project, launchers, wait_until, monkeypatch):
    monkeypatch.setenv("FORGELINE_ORCHESTRATOR_TIMEOUT", "3")
    project.write("gated.py", GATED)
    project.write("pipeline.py", GATED_PIPELINE)
    gate = project.root / "release"
    gate.write_text("")
    runtime = Runtime.at_edge()
    # what `forgeline run` had done when it was killed: the execution recorded Executing, no orchestrator started
    pipeline = project.load()
    execution_id = create_execution(pipeline, {"Gate": str(gate)}, runtime.store, str(project.root),
                                    code_snapshot=save_code_snapshot(runtime, pipeline, str(project.root)))
    execution = PipelineExecution(execution_id, runtime)

    launcher = start(launchers, project.root, "launcher", max_running=1, FORGELINE_AUTO_RESUME="0")

    assert ended(execution, wait_until) == "Succeeded"
    assert launcher.launched() == [execution.id]


def test_an_execution_claimed_by_a_launcher_that_died_before_launching_runs_after_its_lease(
        project, launchers, wait_until, monkeypatch):
    monkeypatch.setenv("FORGELINE_ORCHESTRATOR_TIMEOUT", "3")
    project.write("gated.py", GATED)
    project.write("pipeline.py", GATED_PIPELINE)
    gate = project.root / "release"
    gate.write_text("")
    execution = project.load().start(parameters={"Gate": str(gate)}, queued=True)
    store = Runtime.at_edge().store
    # a launcher that claimed the execution and died before it could spawn the orchestrator
    assert store.claim_next_queued("dead-launcher:1", 3, max_running=1) == (execution.id, 1)
    assert execution.record().status.value == "Executing"

    launcher = start(launchers, project.root, "launcher", max_running=1, FORGELINE_AUTO_RESUME="0")

    assert ended(execution, wait_until) == "Succeeded"
    assert launcher.launched() == [execution.id]
    assert len(execution.list_attempts("Wait")) == 1
