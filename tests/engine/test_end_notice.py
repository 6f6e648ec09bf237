"""The end notice: a forked orchestrator wakes its starter's wait() at its end, or by going away; real processes."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import pytest

from forgeline.engine.end_notice import open_end_notice, send_end_notice
from forgeline.engine.recovery import stop_execution
from forgeline.errors import OrchestratorLostError
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


def _waiting_pipeline(project):
    project.write("wait_for_release.py", """
        import os, time
        open("started", "w").close()
        while not os.path.exists("release"):
            time.sleep(0.02)
        """)
    project.write("pipeline.py", """
        from forgeline.workflow import Pipeline, ProcessingStep
        pipeline = Pipeline(name="notice", steps=[ProcessingStep(name="waits", code="wait_for_release.py")])
        """)
    return project.load()


def _started_folder(home, wait_until):
    """The folder the running step's script works in, once it has started."""
    return wait_until(lambda: next((path.parent for path in home.rglob("started")), None), timeout=120,
                      what="the step's script to start")


class CountedReads:
    """A store whose execution reads are counted; the first one also lets the waiting step end."""

    def __init__(self, store: Any, release: Path) -> None:
        self.store, self.release, self.reads = store, release, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def get_execution(self, execution_id: str) -> Any:
        self.reads += 1
        if self.reads == 1:  # wait() has looked once: only now may the step end
            self.release.write_text("")
        return self.store.get_execution(execution_id)


def test_wait_returns_at_the_end_without_polling_the_store_for_it(project, forgeline_home, wait_until):
    execution = _waiting_pipeline(project).start()
    execution.store = counted = CountedReads(execution.store, _started_folder(forgeline_home, wait_until) / "release")
    assert execution.wait(poll_interval=NEVER) == ExecutionStatus.SUCCEEDED
    # one look before, one after the notice: polling would have read it every few milliseconds meanwhile
    assert counted.reads == 2


def test_a_killed_orchestrator_wakes_wait_which_says_it_is_lost(project, forgeline_home, wait_until):
    execution = _waiting_pipeline(project).start()
    _started_folder(forgeline_home, wait_until)
    pid = wait_until(lambda: execution.record().orchestrator_pid, what="the orchestrator to record its pid")
    os.kill(pid, signal.SIGKILL)
    try:
        with pytest.raises(OrchestratorLostError, match="orchestrator was lost"):
            execution.wait(poll_interval=NEVER)
    finally:
        stop_execution(execution.id, execution.runtime)  # ends the orphaned job too
