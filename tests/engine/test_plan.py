"""Plan: per step HIT, MISS, SKIP or RUN before anything runs, with the reason of every miss.

Plans are computed over a real SQLite store; cache entries are put there the way a finished step records
them (StepCache.record with real artifacts), so no execution is needed to see a HIT.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from forgeline.config import Settings
from forgeline.engine.caching import CacheKey, StepCache
from forgeline.engine.plan import plan_pipeline
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow import (
    CacheConfig,
    ConditionGreaterThan,
    ConditionStep,
    FailStep,
    ParameterFloat,
    ParameterInteger,
    Pipeline,
    ProcessingInput,
    ProcessingOutput,
    ProcessingStep,
)

CACHED = CacheConfig(enable_caching=True)


class Planner:
    """A project folder, its store and artifacts, and the plan of a pipeline there."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = Settings.from_env({"FORGELINE_HOME": str(root / ".forgeline")})
        self.store = SqlMetadataStore(self.settings.database_url)
        self.artifacts = ArtifactStore(self.settings.artifact_root)
        for name in ("prepare.py", "train.py", "report.py"):
            self.write(name, "print('a job')\n")
        self.write("data.csv", "x\n1\n")

    def write(self, relative: str, text: str) -> None:
        path = self.root / relative
        path.write_text(textwrap.dedent(text))
        stamp = time.time_ns() - 10**12 + len(text)
        os.utime(path, ns=(stamp, stamp))

    def pipeline(self, report_cached: bool = True) -> Pipeline:
        epochs = ParameterInteger("Epochs", default_value=3)
        threshold = ParameterFloat("Threshold", default_value=0.5)
        prepare = ProcessingStep(name="Prepare", code="prepare.py", cache_config=CACHED,
                                 inputs=[ProcessingInput(source="data.csv", destination="in")],
                                 outputs=[ProcessingOutput(output_name="data", source="out")])
        train = ProcessingStep(name="Train", code="train.py", cache_config=CACHED, arguments=["--epochs", epochs],
                               inputs=[ProcessingInput(source=prepare.properties.outputs["data"],
                                                       destination="in")],
                               outputs=[ProcessingOutput(output_name="model", source="model")])
        report = ProcessingStep(name="Report", code="report.py",
                                cache_config=CACHED if report_cached else None)
        gate = ConditionStep(name="Gate", conditions=[ConditionGreaterThan(left=threshold, right=0.1)],
                             if_steps=[report], else_steps=[FailStep(name="Refuse", error_message="too low")])
        return Pipeline(name="planned", parameters=[epochs, threshold], steps=[prepare, train, gate])

    def plan(self, pipeline: Pipeline | None = None, **overrides):
        plans = plan_pipeline(pipeline or self.pipeline(), overrides, self.store, self.artifacts, self.settings,
                              str(self.root))
        return {p.name: p for p in plans}

    def remember(self, name: str, plan, execution_id: str, outputs: dict[str, str]) -> dict[str, str]:
        """Record a result of step ``name`` under the key the plan computed, with real stored outputs."""
        stored = {}
        for output, content in outputs.items():
            local = self.root / "made" / execution_id / name / output
            local.mkdir(parents=True)
            (local / "part.txt").write_text(content)
            stored[output] = self.artifacts.put(str(local),
                                                self.artifacts.uri("executions", execution_id, name, output))
        step = self.pipeline().step(name)
        previous = self.store.latest_cache_entry("planned", name)
        components = dict(previous.components) if previous and previous.cache_key == plan.cache_key else {}
        key = CacheKey(plan.cache_key, components or self._components(name))
        StepCache(self.store, self.artifacts).record(key, "planned", step, execution_id, stored, {})
        return stored

    def _components(self, name: str) -> dict[str, str]:
        # the components of the key the plan just computed, recomputed the same way the plan does
        from datetime import UTC, datetime

        from forgeline.engine.caching import compute_cache_key
        from forgeline.engine.fingerprint import Fingerprinter
        from forgeline.engine.jobspecs import JobContext, build_job_spec
        from forgeline.engine.resolve import ResolutionContext

        pipeline = self.pipeline()
        parameters = {"Epochs": 3, "Threshold": 0.5}
        resolution = ResolutionContext("plan", "planned", datetime.now(UTC), parameters)
        for entry_step in ("Prepare",):
            entry = self.store.latest_cache_entry("planned", entry_step)
            if entry is not None:
                resolution.step_properties[entry_step] = {"outputs": dict(entry.outputs), **entry.properties}
        step = pipeline.step(name)
        ctx = JobContext("plan", 1, self.settings, self.artifacts, resolution, str(self.root))
        return compute_cache_key(step, build_job_spec(step, ctx), parameters, str(self.root),
                                 Fingerprinter()).components


@pytest.fixture
def planner(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return Planner(tmp_path)


def test_a_first_plan_says_what_will_run_and_why(planner):
    plans = planner.plan()
    assert [(p.name, p.decision) for p in plans.values()] == [
        ("Prepare", "MISS"), ("Train", "MISS"), ("Gate", "RUN"), ("Report", "MISS"), ("Refuse", "SKIP")]
    assert plans["Prepare"].reasons == ["no earlier cached result of this step"]
    assert plans["Train"].reasons == ["its inputs only exist at run time: upstream step 'Prepare' runs first"]
    assert plans["Gate"].reasons == ["evaluates to true"]  # it only compares parameters: known now
    assert plans["Refuse"].reasons == ["not chosen: Gate evaluates to true"]
    assert plans["Prepare"].cache_key and plans["Prepare"].cache_source is None


def test_a_condition_on_parameters_skips_the_branch_it_will_not_take(planner):
    plans = planner.plan(Threshold=0.05)
    assert plans["Gate"].reasons == ["evaluates to false"]
    assert (plans["Report"].decision, plans["Refuse"].decision) == ("SKIP", "RUN")


def test_a_step_without_caching_always_misses(planner):
    plans = planner.plan(planner.pipeline(report_cached=False))
    assert plans["Report"].decision == "MISS"
    assert plans["Report"].reasons == ["caching is not enabled for this step"]


def test_plan_runs_nothing_and_records_nothing(planner):
    planner.plan()
    planner.plan(Epochs=9)
    assert planner.store.list_executions() == []
    assert not planner.settings.jobs_dir.exists()
    assert planner.store.latest_cache_entry("planned", "Prepare") is None


def test_a_missing_input_is_a_miss_that_says_so(planner):
    (planner.root / "data.csv").unlink()
    plan = planner.plan()["Prepare"]
    assert plan.decision == "MISS"
    assert len(plan.reasons) == 1 and plan.reasons[0].startswith("no cache key: ")
    assert "data.csv" in plan.reasons[0] and "does not exist" in plan.reasons[0]


def test_a_hit_upstream_lets_the_plan_compute_the_keys_downstream(planner):
    first = planner.plan()
    planner.remember("Prepare", first["Prepare"], "exec00000001", {"data": "rows"})

    plans = planner.plan()
    assert (plans["Prepare"].decision, plans["Prepare"].cache_source) == ("HIT", "exec00000001")
    assert plans["Train"].decision == "MISS"
    assert plans["Train"].reasons == ["no earlier cached result of this step"]  # a key, not "run time"

    planner.remember("Train", plans["Train"], "exec00000001", {"model": "weights"})
    plans = planner.plan()
    assert (plans["Train"].decision, plans["Train"].cache_source) == ("HIT", "exec00000001")

    changed = planner.plan(Epochs=4)["Train"]
    assert changed.decision == "MISS"
    assert "parameter 'Epochs' changed: 3 -> 4" in changed.reasons


def test_a_miss_is_explained_against_the_newest_entry(planner):
    planner.remember("Prepare", planner.plan()["Prepare"], "exec00000001", {"data": "rows"})
    planner.write("prepare.py", "print('another job')\n")
    assert planner.plan()["Prepare"].reasons == ["code file 'prepare.py' changed"]
    planner.write("data.csv", "x\n2\n")
    assert planner.plan()["Prepare"].reasons == ["code file 'prepare.py' changed", "input 'in' changed"]


def test_a_known_key_whose_artifacts_are_gone_says_so(planner):
    stored = planner.remember("Prepare", planner.plan()["Prepare"], "exec00000001", {"data": "rows"})
    planner.artifacts.delete(stored["data"])
    plan = planner.plan()["Prepare"]
    assert plan.decision == "MISS"
    assert plan.reasons == ["the cached result expired or its artifacts were deleted"]
