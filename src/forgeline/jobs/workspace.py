"""The job directory: staging inputs and code before a job runs, collecting its outputs after a zero exit."""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from forgeline.errors import JobError, JobInputError
from forgeline.jobs.code_folder import copy_code_folder
from forgeline.jobs.spec import JobSpec, StagedInput

if TYPE_CHECKING:
    from forgeline.store.artifacts import ArtifactStore

CODE_FOLDER = "code"
"""Where a job's `source_dir` is copied inside its job directory."""


@dataclass(frozen=True)
class Workspace:
    """A prepared job directory and the script to run from it (None for function jobs)."""

    job_dir: Path
    code: Path | None


def prepare_workspace(spec: JobSpec, artifacts: ArtifactStore) -> Workspace:
    """Create the job directory, copy the code, stage every input and make room for the outputs."""
    job_dir = Path(spec.job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    Path(spec.log_path).parent.mkdir(parents=True, exist_ok=True)
    code = _stage_code(spec, job_dir)
    for staged in spec.inputs:
        stage_input(staged, job_dir, artifacts, spec.working_dir)
    for output in spec.outputs:
        folder = job_path(job_dir, output.source, f"output '{output.name}'")
        # Like SageMaker, output folders exist before the script runs; a name with a suffix may be a file.
        if not folder.suffix:
            folder.mkdir(parents=True, exist_ok=True)
    return Workspace(job_dir=job_dir, code=code)


def stage_input(staged: StagedInput, job_dir: Path, artifacts: ArtifactStore, working_dir: str | None = None) -> Path:
    """Copy one input (local path or artifact URI, file or folder) to its destination; return where it is."""
    what = f"input '{staged.destination}'"
    destination = job_path(job_dir, staged.destination, what)
    if "://" in staged.source:
        return _stage_uri(staged.source, destination, artifacts, what)
    source = Path(working_dir or os.getcwd(), staged.source)  # an absolute source ignores the base
    _check_local_source(source, staged.source, what, from_store=_inside(source, artifacts.root))
    if source.is_dir() and staged.code_rules is not None:
        copy_code_folder(source, destination, staged.code_rules)
        return destination
    if source.is_dir():
        try:
            shutil.copytree(source, destination, dirs_exist_ok=True)
        except shutil.Error as exc:  # e.g. a symlink loop inside the folder
            first = exc.args[0][0] if exc.args and exc.args[0] else ("?", "?", str(exc))
            _check_local_source(Path(first[0]), first[0], what, from_store=False)  # names a loop or broken link
            raise JobInputError(f"{what}: {first[0]} could not be copied: {first[2]}") from None
        return destination
    target = _file_target(destination, source.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return target


def collect_outputs(spec: JobSpec, artifacts: ArtifactStore) -> dict[str, str]:
    """Store every output of a finished job at its destination URI; one it never wrote fails it unless optional."""
    job_dir = Path(spec.job_dir)
    collected: dict[str, str] = {}
    for output in spec.outputs:
        local = job_path(job_dir, output.source, f"output '{output.name}'")
        written = local.is_file() or (local.is_dir() and any(local.iterdir()))
        if not written and not output.optional:
            raise JobInputError(
                f"output '{output.name}' was never written: its folder '{output.source}' is "
                f"{'empty' if local.exists() else 'missing'} after the job; write it, or declare the output "
                "optional=True"
            )
        if not local.exists():
            local.mkdir(parents=True)
        collected[output.name] = artifacts.put(str(local), output.destination)
    return collected


def job_path(job_dir: Path, relative: str, what: str) -> Path:
    """Resolve a path given relative to the job directory, refusing one that leaves it."""
    if os.path.isabs(relative):
        raise JobInputError(f"{what}: '{relative}' must be a path relative to the job directory, not absolute")
    job_dir = Path(os.path.normpath(job_dir))
    path = Path(os.path.normpath(job_dir / relative))
    if path != job_dir and job_dir not in path.parents:
        raise JobInputError(f"{what}: '{relative}' points outside the job directory")
    return path


def _stage_code(spec: JobSpec, job_dir: Path) -> Path | None:
    if spec.code is None:
        return None
    code = Path(spec.code)
    if spec.source_dir is not None:
        source_dir = Path(spec.source_dir)
        if not source_dir.is_dir():
            raise JobInputError(f"source_dir {source_dir} does not exist or is not a folder")
        try:
            relative = code.relative_to(source_dir)
        except ValueError:
            raise JobInputError(f"code {code} is not inside source_dir {source_dir}") from None
        copy_code_folder(source_dir, job_dir / CODE_FOLDER, spec.code_rules)
        code = job_dir / CODE_FOLDER / relative
    if not code.is_file():
        raise JobInputError(f"code {spec.code} does not exist")
    return code


def _inside(path: Path, root: str) -> bool:
    return "://" not in root and os.path.normpath(path).startswith(os.path.normpath(root) + os.sep)


def _check_local_source(source: Path, given: str, what: str, from_store: bool) -> None:
    """Refuse a local input that is missing, a broken symlink or a symlink loop, saying which."""
    try:
        os.stat(source)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise JobInputError(f"{what}: {given} is a symlink loop (it points back to itself); "
                                "point it at real data") from None
        if source.is_symlink():
            raise JobInputError(f"{what}: {given} is a broken symlink to {os.readlink(source)}") from None
        if from_store:  # an artifact of the local store is gone: not the user's to fix
            raise JobError(f"{what}: {given} does not exist") from None
        raise JobInputError(f"{what}: {given} does not exist") from None
    if not source.is_dir() and not source.is_file():
        raise JobInputError(f"{what}: {given} is neither a file nor a folder")


def _stage_uri(uri: str, destination: Path, artifacts: ArtifactStore, what: str) -> Path:
    if not artifacts.exists(uri):
        raise JobError(f"{what}: {uri} does not exist")  # the store lost it: not the user's to fix
    if artifacts.is_dir(uri):
        artifacts.get(uri, str(destination))
        return destination
    target = _file_target(destination, uri.rstrip("/").rsplit("/", 1)[-1])
    target.parent.mkdir(parents=True, exist_ok=True)
    artifacts.get(uri, str(target))
    return target


def _file_target(destination: Path, filename: str) -> Path:
    # As with SageMaker's ProcessingInput the destination is a folder the file lands in, unless it already
    # names the file itself ("input/config.json" for config.json).
    return destination if destination.name == filename else destination / filename
