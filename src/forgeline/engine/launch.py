"""Start an execution: check parameters, store the definition, hand the run to a detached orchestrator."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

from forgeline.config import Settings
from forgeline.engine.execution import PipelineExecution
from forgeline.engine.plan import StepPlan, plan_pipeline
from forgeline.errors import ForgelineError
from forgeline.jobs.function import WORKER_ENV
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepRun, StepStatus
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.parameters import resolve_parameter_values
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.policies import SelectiveExecutionConfig


def new_execution_id() -> str:
    """A short random id (12 lowercase hex characters)."""
    return secrets.token_hex(6)


def create_execution(pipeline: Pipeline, overrides: Mapping[str, Any], store: MetadataStore,
                     work_dir: str, selective: SelectiveExecutionConfig | None = None) -> str:
    """Validate parameters and record a new execution with every step Pending; nothing runs yet."""
    source = None
    if selective is not None:
        source = store.get_execution(selective.source_execution_id)
        reused = steps_to_reuse(pipeline, selective, {r.name: r for r in store.list_step_runs(source.id)})
        overrides = {**source.parameters, **overrides}
    values = resolve_parameter_values(pipeline.parameters, overrides)
    version = store.save_pipeline_version(pipeline.name, pipeline.to_request())
    execution_id = new_execution_id()
    store.create_execution(
        execution_id=execution_id, pipeline_name=pipeline.name, pipeline_version=version.version,
        parameters=values, work_dir=work_dir, steps=[(s.name, s.step_type) for s in pipeline.steps],
        parent_execution_id=source.id if source else None,
    )
    if selective is not None and source is not None:
        for step in pipeline.steps:
            run = reused.get(step.name)
            if run is not None:
                store.update_step_run(execution_id, step.name, status=StepStatus.SUCCEEDED, outputs=run.outputs,
                                      properties=run.properties, metrics=run.metrics, cache_hit=True,
                                      cache_source=source.id, started_at=run.started_at, ended_at=run.ended_at)
            elif step.name not in selective.selected_steps:
                store.update_step_run(execution_id, step.name, status=StepStatus.SKIPPED,
                                      failure_reason="not selected for this execution")
    return execution_id


def steps_to_reuse(pipeline: Pipeline, selective: SelectiveExecutionConfig,
                   source_runs: Mapping[str, StepRun]) -> dict[str, StepRun]:
    """The source execution's runs of every step the selected steps need; refuse when one did not succeed."""
    unknown = [name for name in selective.selected_steps if name not in pipeline.graph.upstream]
    if unknown:
        raise ForgelineError(f"selected step(s) {', '.join(map(repr, unknown))} are not in pipeline "
                             f"{pipeline.name!r} (its steps: {', '.join(pipeline.graph.order)})")
    selected = set(selective.selected_steps)
    needed: set[str] = set()
    stack = list(selected)
    while stack:
        for parent in pipeline.graph.upstream[stack.pop()]:
            if parent not in selected and parent not in needed:
                needed.add(parent)
                stack.append(parent)
    reused = {}
    for name in sorted(needed):
        run = source_runs.get(name)
        if run is None or run.status != StepStatus.SUCCEEDED:
            state = "does not exist" if run is None else f"is {run.status.value}"
            raise ForgelineError(
                f"cannot run only {', '.join(selective.selected_steps)}: they need the outputs of step {name!r}, "
                f"which {state} in execution {selective.source_execution_id}; select it too"
            )
        reused[name] = run
    return reused


def spawn_orchestrator(execution_id: str, settings: Settings, work_dir: str) -> subprocess.Popen[bytes]:
    """Run the orchestrator in its own session so it outlives the caller; its log goes to the logs folder."""
    log_dir = settings.logs_dir / execution_id
    log_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.to_env()}
    with open(log_dir / "orchestrator.log", "ab") as log_file:
        return subprocess.Popen(
            [sys.executable, "-m", "forgeline.engine.orchestrator", execution_id],
            cwd=work_dir, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )


def start_execution(pipeline: Pipeline, overrides: Mapping[str, Any], settings: Settings | None = None,
                    selective: SelectiveExecutionConfig | None = None) -> PipelineExecution:
    """Start ``pipeline`` with parameter ``overrides`` and return at once with the execution's handle."""
    if os.environ.get(WORKER_ENV):
        raise ForgelineError(
            "pipeline.start() was called while a @step worker imported the pipeline file; "
            "put the call under `if __name__ == \"__main__\":`"
        )
    settings = settings or Settings.from_env()
    store = SqlMetadataStore(settings.database_url)
    work_dir = os.getcwd()
    execution_id = create_execution(pipeline, overrides, store, work_dir, selective)
    spawn_orchestrator(execution_id, settings, work_dir)
    return PipelineExecution(execution_id, store, settings)


def plan_execution(pipeline: Pipeline, overrides: Mapping[str, Any],
                   settings: Settings | None = None) -> list[StepPlan]:
    """What a run with these parameters would reuse and what it would run (nothing is started)."""
    settings = settings or Settings.from_env()
    store = SqlMetadataStore(settings.database_url)
    return plan_pipeline(pipeline, overrides, store, ArtifactStore(settings.artifact_root), settings, os.getcwd())
