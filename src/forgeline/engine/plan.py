"""Plan: before running, say per step whether the cache will hit, and why each miss misses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from forgeline.config import Settings
from forgeline.engine.caching import CacheKey, StepCache, compute_cache_key, explain_miss
from forgeline.engine.fingerprint import Fingerprinter
from forgeline.engine.jobspecs import JobContext, build_job_spec
from forgeline.engine.resolve import ResolutionContext, evaluate
from forgeline.errors import ForgelineError
from forgeline.jobs.function_loading import FunctionLoader
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.workflow.parameters import resolve_parameter_values
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.steps import ConditionStep, JobStep

PLAN_EXECUTION_ID = "plan"


@dataclass(frozen=True)
class StepPlan:
    """What will happen to one step: HIT (reused), MISS (runs), SKIP (not chosen) or RUN (a control step)."""

    name: str
    kind: str
    decision: str
    reasons: list[str] = field(default_factory=list)
    cache_source: str | None = None
    cache_key: str | None = None


def plan_pipeline(pipeline: Pipeline, overrides: Mapping[str, Any], store: MetadataStore,
                  artifacts: ArtifactStore, settings: Settings, work_dir: str) -> list[StepPlan]:
    """Compute every cache key that can be known without running anything, and explain each miss."""
    parameters = resolve_parameter_values(pipeline.parameters, overrides)
    loader = FunctionLoader()  # a cached @step's return value that is not JSON is read back as a run reads it
    resolution = ResolutionContext(PLAN_EXECUTION_ID, pipeline.name, datetime.now(UTC), parameters,
                                   load_return=lambda uri: loader.loads(artifacts.read_bytes(uri)))
    cache = StepCache(store, artifacts)
    fingerprinter = Fingerprinter(store, artifacts.options_by_protocol)
    decisions: dict[str, StepPlan] = {}
    for name in pipeline.graph.topological_order():
        if name in decisions:
            continue
        step = pipeline.step(name)
        upstream = pipeline.graph.upstream[name]
        skipped = [u for u in sorted(upstream) if decisions[u].decision == "SKIP"]
        # a condition evaluated now is known now: the steps of the branch it takes need not wait for it
        pending = [u for u in sorted(upstream) if decisions[u].decision in ("MISS", "RUN")
                   and u not in resolution.step_properties]
        if skipped:
            decisions[name] = StepPlan(name, step.step_type, "SKIP", [f"upstream step {skipped[0]!r} is skipped"])
        elif isinstance(step, ConditionStep):
            decisions.update(plan_condition(step, resolution, bool(pending)))
        elif not isinstance(step, JobStep):
            decisions[name] = StepPlan(name, step.step_type, "RUN", ["evaluated when the execution reaches it"])
        elif pending:
            decisions[name] = StepPlan(name, step.step_type, "MISS", [
                f"its inputs only exist at run time: upstream step {pending[0]!r} runs first"])
        else:
            decisions[name] = plan_job_step(step, pipeline.name, resolution, parameters, cache, fingerprinter,
                                            artifacts, settings, work_dir)
    return [decisions[n] for n in pipeline.graph.order]


def plan_condition(step: ConditionStep, resolution: ResolutionContext, pending: bool) -> dict[str, StepPlan]:
    """A condition whose inputs are known is evaluated, so the branch it will not take shows as SKIP."""
    if pending:
        return {step.name: StepPlan(step.name, step.step_type, "RUN", ["its inputs only exist at run time"])}
    try:
        outcome = all(evaluate(c, resolution) for c in step.conditions)
    except ForgelineError as exc:
        return {step.name: StepPlan(step.name, step.step_type, "RUN", [f"cannot evaluate yet: {exc}"])}
    resolution.step_properties[step.name] = {"outcome": outcome}
    result = {step.name: StepPlan(step.name, step.step_type, "RUN", [f"evaluates to {str(outcome).lower()}"])}
    for other in step.else_steps if outcome else step.if_steps:
        result[other.name] = StepPlan(other.name, other.step_type, "SKIP",
                                      [f"not chosen: {step.name} evaluates to {str(outcome).lower()}"])
    return result


def plan_job_step(step: JobStep, pipeline_name: str, resolution: ResolutionContext, parameters: Mapping[str, Any],
                  cache: StepCache, fingerprinter: Fingerprinter, artifacts: ArtifactStore, settings: Settings,
                  work_dir: str) -> StepPlan:
    """HIT or MISS for a step whose inputs are all known now."""
    if step.cache_config is None or not step.cache_config.enable_caching:
        return StepPlan(step.name, step.step_type, "MISS", ["caching is not enabled for this step"])
    ctx = JobContext(PLAN_EXECUTION_ID, 1, settings, artifacts, resolution, work_dir)
    try:
        spec = build_job_spec(step, ctx)
        key: CacheKey = compute_cache_key(step, spec, parameters, work_dir, fingerprinter)
    except ForgelineError as exc:
        return StepPlan(step.name, step.step_type, "MISS", [f"no cache key: {exc}"])
    entry = cache.lookup(key, step.cache_config.expires_after)
    if entry is not None:
        resolution.step_properties[step.name] = {"outputs": dict(entry.outputs), **entry.properties}
        return StepPlan(step.name, step.step_type, "HIT", [], entry.execution_id, key.digest)
    previous = cache.store.latest_cache_entry(pipeline_name, step.name)
    reasons = explain_miss(key.components, previous.components if previous else None)
    if previous is not None and previous.cache_key == key.digest:
        reasons = ["the cached result expired or its artifacts were deleted"]
    return StepPlan(step.name, step.step_type, "MISS", reasons, None, key.digest)
