"""The end notice: a forked orchestrator wakes its starter's wait() at its end, or by going away; real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from forgeline.engine.end_notice import open_end_notice, send_end_notice
from forgeline.engine.recovery import stop_execution
from forgeline.engine.runtime import Runtime
from forgeline.store.metadata.records import ExecutionStatus

NEVER = 3600.0
"""A poll interval no test waits out: a wait() that returns was woken by the notice."""


def test_a_notice_sent_wakes_the_waiter_once_and_is_then_closed():
    notice, write_fd = open_end_notice()
    try:
        assert notice.open and not notice.wait(0)
        send_end_notice(write_fd)
        assert notice.wait(NEVER)
        assert not notice.open and not notice.wait(0)
    finally:
        os.close(write_fd)


def test_the_write_end_closing_without_a_notice_wakes_the_waiter_too():
    notice, write_fd = open_end_notice()
    os.close(write_fd)  # what an orchestrator's exit does, however it ends
    assert notice.wait(NEVER) and not notice.open


def test_a_notice_to_a_starter_that_let_go_is_no_error():
    notice, write_fd = open_end_notice()
    notice.close()
    send_end_notice(write_fd)
    send_end_notice(None)
    os.close(write_fd)


WAITING_STEP = """
import os, time
open("started", "w").close()
while not os.path.exists("release"):
    time.sleep(0.02)
"""

PIPELINE = """
from forgeline.workflow import Pipeline, ProcessingStep
pipeline = Pipeline(name="notice", steps=[ProcessingStep(name="waits", code="wait_for_release.py")])
"""

# Run in a process of its own, as `python pipeline.py` would be: the orchestrator is forked (and so has an end
# notice) only from a process with no other thread, which a test runner's worker need not be.
STARTER = """
import dataclasses, json, os, signal, sys, time
from pathlib import Path

from forgeline.engine.loader import load_pipeline
from forgeline.errors import OrchestratorLostError


class CountedReads:
    # a store whose execution reads are counted; the first one also lets the waiting step end

    def __init__(self, store, release):
        self.store, self.release, self.reads = store, release, 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def get_execution(self, execution_id):
        self.reads += 1
        if self.reads == 1 and self.release is not None:  # wait() has looked once: now the step may end
            self.release.write_text("")
        return self.store.get_execution(execution_id)


NEVER = float(sys.argv[2])
execution = load_pipeline("pipeline.py").start()
deadline = time.monotonic() + 120
while not (started := next(Path(os.environ["FORGELINE_HOME"]).rglob("started"), None)):
    assert time.monotonic() < deadline, "the step's script did not start"
    time.sleep(0.05)
kill = sys.argv[1] == "kill"
if kill:
    os.kill(execution.record().orchestrator_pid, signal.SIGKILL)
counted = CountedReads(execution.store, None if kill else started.parent / "release")
execution._runtime = dataclasses.replace(execution.runtime, store=counted)
try:
    outcome = execution.wait(poll_interval=NEVER).value
except OrchestratorLostError as exc:
    outcome = str(exc)
    (started.parent / "release").write_text("")
print(json.dumps({"notice": execution._end_notice is not None, "outcome": outcome, "reads": counted.reads,
                  "id": execution.id}))
"""


def _start_and_wait(project: Any, how: str) -> dict[str, Any]:
    project.write("wait_for_release.py", WAITING_STEP)
    project.write("pipeline.py", PIPELINE)
    project.write("starter.py", STARTER)
    done = subprocess.run([sys.executable, "starter.py", how, str(NEVER)], cwd=project.root, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    assert result["notice"], "the orchestrator was not forked, so it has no end notice"
    return result


def test_wait_returns_at_the_end_without_polling_the_store_for_it(project):
    result = _start_and_wait(project, "release")
    assert result["outcome"] == ExecutionStatus.SUCCEEDED.value
    # one look before, one after the notice: polling would have read it every few milliseconds meanwhile
    assert result["reads"] == 2, result


def test_a_killed_orchestrator_wakes_wait_which_says_it_is_lost(project):
    result = _start_and_wait(project, "kill")
    try:
        assert "orchestrator was lost" in result["outcome"], result
    finally:
        stop_execution(result["id"], Runtime.at_edge())  # ends the orphaned job too
