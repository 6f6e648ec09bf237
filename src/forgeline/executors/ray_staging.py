"""Shipping a job to another machine: its code and local inputs go through the artifact store, never a shared disk.

On the orchestrator's side, :func:`ship` uploads local-path inputs to the store and, for a spec that still names
its code by absolute paths, stores that code as a snapshot and names it inside; the execution's own snapshot
needs nothing. On the node, :func:`land` places the job (``forgeline.jobs.placement``) under the node's own
folders: the snapshot checked out once per node, the job folder and log its own.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path

from forgeline.errors import JobInputError
from forgeline.jobs.code_folder import CodeFolderRules, copy_code_folder, list_code_folder
from forgeline.jobs.placement import FORGELINE_PACKAGE, JobRoots, forgeline_script, place_job
from forgeline.jobs.spec import JobSpec, StagedInput
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.snapshots import save_snapshot

NODE_FOLDER = "forgeline-ray"
"""Folder under a node's temporary folder where its jobs, logs, code checkouts and environments go."""


def ship(spec: JobSpec, artifacts: ArtifactStore) -> JobSpec:
    """The spec with its code in a snapshot and its local inputs uploaded: runnable on any node of the store.

    Its log path is cleared: the node logs into a folder of its own, and the orchestrator keeps the step's log.
    """
    spec = replace(spec, log_path="")
    if spec.code_snapshot is None:
        spec = _snapshot_code(spec, artifacts)
    return replace(spec, inputs=tuple(_ship_input(i, spec, n, artifacts) for n, i in enumerate(spec.inputs)))


def land(spec: JobSpec, artifacts: ArtifactStore) -> JobSpec:
    """A shipped spec placed on this node: its code checked out, its folders under this node's own roots."""
    base = Path(tempfile.gettempdir(), NODE_FOLDER)
    roots = JobRoots(base / "jobs", base / "logs", base / "code", base / "envs")
    try:
        placed = place_job(spec, roots, artifacts)
        Path(placed.job_dir).mkdir(parents=True, exist_ok=True)
    except OSError:  # the orchestrator's job folder cannot be made here: this node's own
        placed = place_job(replace(spec, job_dir=""), roots, artifacts)
    if placed.working_dir and not os.path.isdir(placed.working_dir):
        placed = replace(placed, working_dir=placed.job_dir)  # the orchestrator's folder is not on this node
    return placed


def _snapshot_code(spec: JobSpec, artifacts: ArtifactStore) -> JobSpec:
    """A spec naming code by absolute paths, made to name it in a snapshot stored now."""
    files: dict[str, str] = {}
    code, source_dir = spec.code, spec.source_dir
    if code is not None and _inside(code, str(FORGELINE_PACKAGE)):
        code = forgeline_script(code)
    elif source_dir is not None and code is not None and os.path.isabs(source_dir):
        _add_folder(files, "source", source_dir, spec.code_rules)
        code, source_dir = "source/" + os.path.relpath(code, source_dir), "source"
    elif code is not None and os.path.isabs(code):
        files["script/" + os.path.basename(code)] = code
        code = "script/" + os.path.basename(code)
    function = spec.function
    if function is not None and function.file is not None and os.path.isabs(function.file):
        _add_folder(files, "function", os.path.dirname(function.file), spec.code_rules)
        function = replace(function, file="function/" + os.path.basename(function.file))
    requirements = spec.requirements
    if requirements is not None and os.path.isabs(requirements):
        files["requirements/" + os.path.basename(requirements)] = requirements
        requirements = "requirements/" + os.path.basename(requirements)
    inputs = list(spec.inputs)
    for number, staged in enumerate(inputs):
        if staged.code_rules is not None and "://" not in staged.source:
            folder = Path(spec.working_dir or os.getcwd(), staged.source)
            _add_folder(files, f"inputs/{number}", str(folder), staged.code_rules)
            inputs[number] = replace(staged, source=f"inputs/{number}")
    if not files:
        return replace(spec, code=code)
    return replace(spec, code_snapshot=save_snapshot(artifacts, files), code=code, source_dir=source_dir,
                   function=function, requirements=requirements, inputs=tuple(inputs))


def staging_uri(artifacts: ArtifactStore, spec: JobSpec, *parts: str) -> str:
    """Where a job's shipped inputs (and a sharded job's partial outputs) are kept in the store."""
    return artifacts.uri("ray-staging", *spec.job_id.split("/"), *parts)


def _ship_input(staged: StagedInput, spec: JobSpec, number: int, artifacts: ArtifactStore) -> StagedInput:
    if "://" in staged.source:
        return staged  # in the store already
    if staged.code_rules is not None and spec.code_snapshot is not None and not os.path.isabs(staged.source):
        return staged  # a folder of the code snapshot
    source = Path(spec.working_dir or os.getcwd(), staged.source)
    if not source.exists():
        raise JobInputError(f"input '{staged.destination}': {staged.source} does not exist")
    uri = staging_uri(artifacts, spec, "inputs", str(number), source.name)
    if staged.code_rules is not None and source.is_dir():
        with tempfile.TemporaryDirectory() as scratch:
            copy_code_folder(source, Path(scratch, "code"), staged.code_rules)
            artifacts.put(Path(scratch, "code"), uri)
    else:
        artifacts.put(str(source), uri)
    return replace(staged, source=uri)


def _add_folder(files: dict[str, str], prefix: str, folder: str, rules: CodeFolderRules) -> None:
    if not os.path.isdir(folder):
        raise JobInputError(f"source_dir {folder} does not exist or is not a folder")
    for file in list_code_folder(folder, rules):
        files[f"{prefix}/{file.relative}"] = file.path


def _inside(path: str, folder: str) -> bool:
    return os.path.abspath(path).startswith(folder + os.sep)
