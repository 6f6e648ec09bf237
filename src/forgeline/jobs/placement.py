"""Where a job runs on this machine: its folder, its log and its code, decided by the executor that runs it.

A JobSpec names no folder of the machine that built it: code is a snapshot id plus paths inside the snapshot,
and the job and log folders are left empty. ``place_job`` makes a spec runnable here: it checks the snapshot out
(once per snapshot id, shared read-only by every job that runs that code) and fills in the job folder, the log
and the environments folder under this machine's roots. The same spec and roots always give the same places,
so an executor that takes over a dead orchestrator's jobs finds them again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import forgeline
from forgeline.config import Settings
from forgeline.errors import JobError
from forgeline.jobs.spec import FunctionRef, JobSpec
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.snapshots import restore_snapshot

FORGELINE_PACKAGE = Path(forgeline.__file__).resolve().parent
OWN_SCRIPT_PREFIX = "forgeline:"
"""A spec names forgeline's own scripts (batch transform, reports) as ``forgeline:<path in the package>``."""
SNAPSHOT_ROOT = "."
"""A source folder that is the whole snapshot (the working folder itself was the step's ``source_dir``)."""


@dataclass(frozen=True)
class JobRoots:
    """The folders of this machine that jobs are placed under."""

    jobs_dir: Path  # <jobs_dir>/<job id>: one fresh folder per attempt
    logs_dir: Path  # <logs_dir>/<job id>.log
    code_dir: Path  # <code_dir>/<snapshot id>: checked-out code snapshots
    envs_dir: Path  # virtual environments built from requirements files

    @classmethod
    def of(cls, settings: Settings) -> JobRoots:
        """The settings' jobs and logs folders, with code/ and envs/ under the forgeline home."""
        return cls(settings.jobs_dir, settings.logs_dir, settings.home / "code", settings.home / "envs")

    def log_path(self, job_id: str) -> str:
        """The log file of job ``job_id``."""
        return str(self.logs_dir / f"{job_id}.log")


def forgeline_script(path: str | Path) -> str:
    """One of forgeline's own scripts as a spec names it: by its path in the package, the same on every node."""
    return OWN_SCRIPT_PREFIX + Path(path).resolve().relative_to(FORGELINE_PACKAGE).as_posix()


def code_location(path: str, code_root: str | Path | None) -> str:
    """Where a spec's code path is on this machine: in the checked-out snapshot, in forgeline, or as given."""
    if path.startswith(OWN_SCRIPT_PREFIX):
        return str(FORGELINE_PACKAGE / path.removeprefix(OWN_SCRIPT_PREFIX))
    if os.path.isabs(path) or code_root is None:
        return path
    return os.path.normpath(os.path.join(code_root, path))


def checkout_snapshot(artifacts: ArtifactStore, snapshot_id: str, code_dir: Path) -> Path:
    """The folder holding snapshot ``snapshot_id``'s files, restored from the artifact store if not yet here."""
    target = code_dir / snapshot_id
    if target.is_dir():
        return target
    code_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=code_dir, prefix=f".{snapshot_id[:12]}."))
    try:
        restore_snapshot(artifacts, snapshot_id, staging)
        try:
            staging.rename(target)  # atomic: a job never sees half a checkout
        except OSError:
            if not target.is_dir():  # not another process having checked it out meanwhile
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def with_folders(spec: JobSpec, roots: JobRoots | None) -> JobSpec:
    """The spec with its job folder and log under ``roots`` (those it names already are kept); no I/O."""
    if spec.job_dir and spec.log_path:
        return spec
    return replace(spec, job_dir=spec.job_dir or str(_required(roots, spec).jobs_dir / spec.job_id),
                   log_path=spec.log_path or _required(roots, spec).log_path(spec.job_id))


def place_job(spec: JobSpec, roots: JobRoots | None, artifacts: ArtifactStore) -> JobSpec:
    """The spec with this machine's job folder, log, environments folder and checked-out code filled in.

    ``roots`` None: only a spec that names its folders and needs no checkout or environment can be placed.
    """
    spec = with_folders(spec, roots)
    code_root = checkout_snapshot(artifacts, spec.code_snapshot, _required(roots, spec).code_dir) \
        if spec.code_snapshot else None

    def code_path(path: str | None) -> str | None:
        return None if path is None else code_location(path, code_root)

    function = spec.function
    if function is not None and function.file is not None:
        function = FunctionRef(function.name, code_path(function.file), function.module)
    inputs = tuple(replace(staged, source=code_path(staged.source) or staged.source)
                   if staged.code_rules is not None and code_root is not None and _is_relative_path(staged.source)
                   else staged for staged in spec.inputs)
    return replace(
        spec,
        envs_dir=spec.envs_dir or (str(_required(roots, spec).envs_dir) if spec.requirements else None),
        code=code_path(spec.code),
        source_dir=code_path(spec.source_dir),
        requirements=code_path(spec.requirements),
        function=function,
        inputs=inputs,
        code_root=str(code_root) if code_root is not None else spec.code_root,
    )


def _required(roots: JobRoots | None, spec: JobSpec) -> JobRoots:
    if roots is None:
        raise JobError(f"job {spec.job_id} cannot be placed: it names no job folder, log or environments folder, "
                       "and its executor has no folders to place it in")
    return roots


def _is_relative_path(source: str) -> bool:
    return "://" not in source and not os.path.isabs(source)
