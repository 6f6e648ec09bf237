"""A stored pipeline to schedule or trigger, in a fresh store: ``stored`` (its runtime and StoredPipelineRef)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import Project
from forgeline.config import Settings
from forgeline.engine.runtime import Runtime
from forgeline.engine.stored import store_pipeline
from forgeline.store.metadata.schedule_store import StoredPipelineRef

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
