"""Stored pipelines: a definition version with the code snapshot it runs, saved once and started later by name.

An edge that loads a user's pipeline file (``forgeline run``, ``schedules create``) stores it with
``store_pipeline``; whatever starts it later (a schedule, a trigger, the API) needs neither the file nor the
folder it came from: ``start_stored`` starts the stored definition with the stored code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from forgeline.engine.code_snapshot import save_code_snapshot
from forgeline.engine.runtime import Runtime
from forgeline.errors import ForgelineError
from forgeline.store.metadata.records import ExecutionStatus
from forgeline.store.snapshots import read_snapshot
from forgeline.workflow.pipeline import Pipeline


@dataclass(frozen=True)
class StoredPipeline:
    """A stored pipeline version and the code snapshot its latest save recorded."""

    name: str
    version: int
    code_snapshot: str


def store_pipeline(runtime: Runtime, pipeline: Pipeline, work_dir: str) -> StoredPipeline:
    """Save the definition as a version (a new one only when it changed) with a snapshot of its code; start nothing."""
    snapshot = save_code_snapshot(runtime, pipeline, os.path.abspath(work_dir))
    version = runtime.store.save_pipeline_version(pipeline.name, pipeline.to_request(), code_snapshot=snapshot)
    return StoredPipeline(pipeline.name, version.version, snapshot)


def start_stored(runtime: Runtime, pipeline_name: str, overrides: Mapping[str, Any], *, version: int | None = None,
                 code_snapshot: str | None = None, work_dir: str | None = None, queued: bool = True,
                 started_by: dict[str, Any] | None = None) -> str:
    """Start an execution of a stored pipeline version (None: the newest) and return its id.

    Parameters are checked as ``forgeline run`` checks them (ParameterError naming the bad one). The code is
    ``code_snapshot``, else the one the version's latest save recorded. ``work_dir`` is where relative data
    paths resolve (None: this process's working folder). ``queued=True`` leaves the execution Queued for a
    QueueLauncher; False launches its orchestrator at once (a fresh process). ``started_by`` is recorded as is.
    """
    # launch builds on this module (upsert_pipeline stores with store_pipeline): imported when starting
    from forgeline.engine.launch import ProcessLauncher, create_execution

    stored = runtime.store.get_pipeline_version(pipeline_name, version)
    snapshot = code_snapshot or stored.code_snapshot
    if snapshot is None:
        raise ForgelineError(
            f"pipeline {pipeline_name!r} version {stored.version} has no code snapshot to run; store it again from "
            "its pipeline file (`forgeline run`, or store_pipeline) so its code is saved with it"
        )
    read_snapshot(runtime.artifacts, snapshot)  # an unknown or damaged snapshot is refused before anything starts
    pipeline = Pipeline.from_definition(stored.definition)
    folder = os.path.abspath(work_dir or os.getcwd())
    execution_id = create_execution(
        pipeline, overrides, runtime.store, folder,
        status=ExecutionStatus.QUEUED if queued else ExecutionStatus.EXECUTING,
        code_snapshot=snapshot, started_by=started_by, version=stored.version,
    )
    if not queued:
        runtime.store.close()
        ProcessLauncher(runtime.settings, fork=False).launch(execution_id, folder)
    return execution_id
