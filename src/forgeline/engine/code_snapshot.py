"""The code a pipeline runs, collected from the user's folder and stored as one content-addressed snapshot.

What a step runs: its script (with the project modules it imports) or its whole ``source_dir`` (by the code
folder rules, as a job copies it), its requirements file, a Model's inference code, and the module a @step
function lives in (with the project modules that module imports). Files inside the working folder keep their
path relative to it; a file outside it is stored under ``_external/<digest of its folder>/``, so the engine names
code by snapshot id and relative path and never by where it was on the machine that started the execution.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import time
from collections.abc import Iterable

from forgeline.config import Settings
from forgeline.engine.code_fingerprint import CodeScanner
from forgeline.engine.runtime import Runtime
from forgeline.jobs.code_folder import CodeFolderRules, list_code_folder
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import ContentIndexEntry
from forgeline.store.snapshots import save_snapshot
from forgeline.workflow.pipeline import Pipeline
from forgeline.workflow.steps import FunctionStep, Step
from forgeline.workflow.steps.foreach import ForEach

EXTERNAL_FOLDER = "_external"
"""Where code from outside the working folder goes in a snapshot, one sub-folder per folder it came from."""
_INDEX_PREFIX = "sha256:"  # content-index keys of snapshot digests, apart from the cache's own (BLAKE3) entries
_RACY_NS = 2 * 10**9


def snapshot_name(path: str, work_dir: str) -> str:
    """The relative path a local file (absolute, or relative to ``work_dir``) has in the snapshot."""
    full = os.path.normpath(os.path.join(work_dir, path))
    relative = os.path.relpath(full, work_dir)
    if not relative.startswith(os.pardir + os.sep) and relative != os.pardir and not os.path.isabs(relative):
        return relative.replace(os.sep, "/")
    folder = hashlib.sha256(os.fsencode(os.path.dirname(full))).hexdigest()[:16]
    return f"{EXTERNAL_FOLDER}/{folder}/{os.path.basename(full)}"


def folder_snapshot_name(folder: str, work_dir: str) -> str:
    """The relative path a code folder has in the snapshot (a file inside it: this plus its path in the folder)."""
    full = os.path.normpath(os.path.join(work_dir, folder))
    relative = os.path.relpath(full, work_dir)
    if relative == os.curdir:
        return ""
    if not relative.startswith(os.pardir + os.sep) and relative != os.pardir:
        return relative.replace(os.sep, "/")
    return f"{EXTERNAL_FOLDER}/{hashlib.sha256(os.fsencode(full)).hexdigest()[:16]}"


def code_rules_of(settings: Settings) -> CodeFolderRules:
    """What a code folder leaves out (forgeline's own home and local artifact root) and its size limit."""
    excluded = [str(settings.home)]
    if "://" not in settings.artifact_root:
        excluded.append(settings.artifact_root)
    return CodeFolderRules(excluded=tuple(excluded), max_bytes=settings.max_code_bytes)


def pipeline_code_files(pipeline: Pipeline, work_dir: str, rules: CodeFolderRules) -> dict[str, str]:
    """Every file the pipeline's steps run: snapshot path -> local file (JobInputError for a folder over the limit)."""
    files: dict[str, str] = {}
    scripts: list[str] = []
    for step in _all_steps(pipeline.steps):
        for path in step.code_files():
            local = os.path.normpath(os.path.join(work_dir, path))
            if os.path.isdir(local):
                prefix = folder_snapshot_name(local, work_dir)
                for file in list_code_folder(local, rules):
                    files.setdefault(f"{prefix}/{file.relative}" if prefix else file.relative, file.path)
            elif os.path.isfile(local):
                files.setdefault(snapshot_name(local, work_dir), local)
                if local.endswith(".py"):
                    scripts.append(local)
        if isinstance(step, FunctionStep):
            module = step.function.get("Module")
            origin = _module_file(module) if module else None
            if origin is not None and _inside(origin, work_dir):
                files.setdefault(snapshot_name(origin, work_dir), origin)
                scripts.append(origin)
    scanner = CodeScanner([work_dir], project_only=True)
    for script in scripts:  # the project modules they import (found next to each file first), as cache keys count
        scanner.add_file(script)
    for path in scanner.files:
        files.setdefault(snapshot_name(path, work_dir), path)
    return files


def save_code_snapshot(runtime: Runtime, pipeline: Pipeline, work_dir: str) -> str:
    """Store the code the pipeline runs from ``work_dir`` as a snapshot; its id (unchanged files are not re-read)."""
    files = pipeline_code_files(pipeline, work_dir, code_rules_of(runtime.settings))
    return save_snapshot(runtime.artifacts, files, digests=_indexed_sha256(files.values(), runtime.store))


def _indexed_sha256(paths: Iterable[str], store: MetadataStore) -> dict[str, str]:
    """SHA-256 of each file, from the content index when its size and mtime are unchanged."""
    keys = {path: _INDEX_PREFIX + os.path.abspath(path) for path in paths}
    known = store.lookup_content(keys.values())
    started_ns = time.time_ns()
    digests: dict[str, str] = {}
    fresh: list[ContentIndexEntry] = []
    for path, key in keys.items():
        try:
            info = os.stat(path)
        except OSError:
            continue  # save_snapshot names the missing file
        entry = known.get(key)
        if entry is not None and entry.size == info.st_size and entry.version == str(info.st_mtime_ns):
            digests[path] = entry.digest
            continue
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        digests[path] = digest
        if started_ns - info.st_mtime_ns >= _RACY_NS:  # a file changed this recently may change again unseen
            fresh.append(ContentIndexEntry(key, info.st_size, str(info.st_mtime_ns), digest))
    if fresh:
        store.remember_content(fresh)
    return digests


def _all_steps(steps: Iterable[Step]) -> list[Step]:
    found: list[Step] = []
    for step in steps:
        found.append(step)
        if isinstance(step, ForEach):
            found.extend(step.all_body_steps())
    return found


def _module_file(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.origin and os.path.isfile(spec.origin) else None


def _inside(path: str, folder: str) -> bool:
    return os.path.abspath(path).startswith(os.path.join(os.path.abspath(folder), ""))
