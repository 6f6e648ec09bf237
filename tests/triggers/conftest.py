"""A stored pipeline to schedule or trigger, in a fresh store: ``stored`` (its runtime and StoredPipelineRef);
``StallingStarter``, the starter of a duty holder that stands still past its lease."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conftest import Project
from forgeline.config import Settings
from forgeline.engine.runtime import Runtime
from forgeline.engine.stored import store_pipeline
from forgeline.store.metadata.schedule_store import StoredPipelineRef
from forgeline.triggers.starting import QueuedStarter

ECHO_PIPELINE = """
    from forgeline.workflow import ExecutionVariables, ParameterInteger, ParameterString, Pipeline, ProcessingStep

    model = ParameterString("ModelType", default_value="hgb")
    rows = ParameterInteger("Rows", default_value=10)
    pipeline = Pipeline(name="echo", parameters=[model, rows], steps=[
        ProcessingStep(name="Echo", code="echo.py",
                       arguments=[model, rows, ExecutionVariables.TRIGGER_URI])])
"""


@dataclass(frozen=True)
class Stored:
    """A runtime over the test's store and the stored echo pipeline."""

    runtime: Runtime
    pipeline: StoredPipelineRef
    root: Path


@pytest.fixture
def stored(project: Project) -> Stored:
    """The echo pipeline stored (definition and code snapshot) as `schedules create` stores it."""
    project.write("pipeline.py", ECHO_PIPELINE)
    project.write("echo.py", "import sys\nprint(sys.argv[1:])\n")
    runtime = Runtime.build(Settings.from_env())
    saved = store_pipeline(runtime, project.load(), str(project.root))
    return Stored(runtime, StoredPipelineRef(saved.name, saved.version, saved.code_snapshot, "pipeline.py",
                                             str(project.root)), project.root)


class StallingStarter(QueuedStarter):
    """A starter that, before its first start, stalls until ``meanwhile`` (another server process) has run: a
    schedule runner or trigger watcher that claimed work and stood still past its lease while another took over."""

    def __init__(self, runtime: Runtime, meanwhile: Callable[[], None]) -> None:
        super().__init__(runtime)
        self.meanwhile = meanwhile
        self.stalled = False

    def start(self, pipeline: StoredPipelineRef, overrides: Mapping[str, Any], started_by: dict[str, Any]) -> str:
        """Run ``meanwhile`` in its own thread (not under this one's lease fence) the first time, then start."""
        if not self.stalled:
            self.stalled = True
            other = threading.Thread(target=self.meanwhile)
            other.start()
            other.join()
        return super().start(pipeline, overrides, started_by)
