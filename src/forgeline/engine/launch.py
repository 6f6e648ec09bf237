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
from forgeline.errors import ForgelineError
from forgeline.jobs.function import WORKER_ENV
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.workflow.parameters import resolve_parameter_values
from forgeline.workflow.pipeline import Pipeline


def new_execution_id() -> str:
    """A short random id (12 lowercase hex characters)."""
    return secrets.token_hex(6)


def create_execution(pipeline: Pipeline, overrides: Mapping[str, Any], store: MetadataStore,
                     work_dir: str) -> str:
    """Validate parameters and record a new execution with every step Pending; nothing runs yet."""
    values = resolve_parameter_values(pipeline.parameters, overrides)
    version = store.save_pipeline_version(pipeline.name, pipeline.to_request())
    execution_id = new_execution_id()
    store.create_execution(
        execution_id=execution_id, pipeline_name=pipeline.name, pipeline_version=version.version,
        parameters=values, work_dir=work_dir, steps=[(s.name, s.step_type) for s in pipeline.steps],
    )
    return execution_id


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


def start_execution(pipeline: Pipeline, overrides: Mapping[str, Any],
                    settings: Settings | None = None) -> PipelineExecution:
    """Start ``pipeline`` with parameter ``overrides`` and return at once with the execution's handle."""
    if os.environ.get(WORKER_ENV):
        raise ForgelineError(
            "pipeline.start() was called while a @step worker imported the pipeline file; "
            "put the call under `if __name__ == \"__main__\":`"
        )
    settings = settings or Settings.from_env()
    store = SqlMetadataStore(settings.database_url)
    work_dir = os.getcwd()
    execution_id = create_execution(pipeline, overrides, store, work_dir)
    spawn_orchestrator(execution_id, settings, work_dir)
    return PipelineExecution(execution_id, store, settings)
