"""Independent steps run at the same time, up to ParallelismConfiguration(max_parallel_steps=N)."""

from __future__ import annotations

import os

import pytest

SLEEP = """
    import time
    time.sleep(0.5)
"""

PIPELINE = """
    from forgeline.workflow import ParallelismConfiguration, Pipeline, ProcessingStep

    left = ProcessingStep(name="Left", code="sleep.py")
    right = ProcessingStep(name="Right", code="sleep.py")
    join = ProcessingStep(name="After", code="sleep.py", depends_on=[left, right])
    pipeline = Pipeline(name="branches", steps=[left, right, join]{config})
"""


def interval(run):
    assert run.started_at is not None and run.ended_at is not None, run
    return run.started_at, run.ended_at


def overlap(a, b) -> bool:
    (a_start, a_end), (b_start, b_end) = interval(a), interval(b)
    return a_start < b_end and b_start < a_end


def branches(project, config: str):
    project.write("sleep.py", SLEEP)
    project.write("pipeline.py", PIPELINE.format(config=config))
    finished = project.run()
    assert finished.status == "Succeeded", finished.failure_reason
    return finished.steps


@pytest.mark.parametrize("config", [
    pytest.param(", parallelism_config=ParallelismConfiguration(max_parallel_steps=2)", id="max-2"),
    pytest.param("", id="default-one-per-core"),
])
def test_independent_steps_overlap(project, config):
    if not config and (os.cpu_count() or 1) < 2:
        pytest.skip("the default parallelism is one step per core; this machine has one")
    steps = branches(project, config)

    assert overlap(steps["Left"], steps["Right"]), (interval(steps["Left"]), interval(steps["Right"]))
    # The join waits for both branches.
    assert steps["After"].started_at >= max(steps["Left"].ended_at, steps["Right"].ended_at)
