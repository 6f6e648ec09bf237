"""Cache keys: what a step's result depends on (kind, resolved arguments, code, environment, input content)."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import singledispatch
from typing import Any

from forgeline.engine.code_fingerprint import (
    CodeFingerprint,
    CodeScanner,
    fingerprint_folder,
    fingerprint_function,
    fingerprint_script,
)
from forgeline.engine.fingerprint import Fingerprinter, combine, hash_local_file
from forgeline.jobs.placement import code_location
from forgeline.jobs.spec import JobSpec
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import CacheEntry
from forgeline.workflow.expressions import walk
from forgeline.workflow.parameters import Parameter, ParameterReference
from forgeline.workflow.steps import FunctionStep, ProcessingStep, Step, TrainingStep
from forgeline.workflow.steps.transform import TransformStep

VALUE_LIMIT = 200


@dataclass(frozen=True)
class CacheKey:
    """A step's cache key and the named components it was computed from (kept to explain misses)."""

    digest: str
    components: dict[str, str]


def short(value: Any) -> str:
    """A component value: readable when short, a digest when long."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=repr)
    return text if len(text) <= VALUE_LIMIT else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def code_components(fingerprint: CodeFingerprint) -> dict[str, str]:
    """Named components for every code file and installed package."""
    parts = {f"code:{path}": digest for path, digest in fingerprint.files.items()}
    parts.update({f"package:{name}": version for name, version in fingerprint.packages.items()})
    return parts


@singledispatch
def kind_components(step: Step, spec: JobSpec, code_dir: str) -> dict[str, str]:
    """Components specific to a step kind: its code and arguments.

    ``code_dir``: where the spec's code paths are (the execution's code snapshot checked out, or the working
    folder for a spec that names code by absolute path); file names in the key are relative to it, so a
    snapshot gives the same key as the working folder it was taken from.
    """
    return {}


def script_components(spec: JobSpec, code_dir: str) -> dict[str, str]:
    """A script job's entry point, its code (the whole source_dir when it has one) and its interpreter."""
    script = code_location(spec.code or "", code_dir)
    if spec.source_dir:
        folder = os.path.normpath(os.path.join(code_dir, spec.source_dir))
        code = fingerprint_folder(folder, [code_dir], code_dir, spec.code_rules)
    else:
        code = fingerprint_script(script, [], code_dir)
    parts = {"entry point": os.path.relpath(script, os.path.join(code_dir, spec.source_dir or "")),
             **code_components(code)}
    if spec.requirements:
        parts["requirements"] = hash_local_file(os.path.join(code_dir, spec.requirements))
    if spec.python:
        parts["interpreter"] = spec.python
    return parts


@kind_components.register(ProcessingStep)
@kind_components.register(TransformStep)  # a batch transform is a processing job running forgeline's own script
def _processing(step: Step, spec: JobSpec, code_dir: str) -> dict[str, str]:
    return {"arguments": short(list(spec.arguments)), **script_components(spec, code_dir)}


@kind_components.register
def _training(step: TrainingStep, spec: JobSpec, code_dir: str) -> dict[str, str]:
    training = spec.training
    assert training is not None
    return {
        "hyperparameters": short(training.hyperparameters),
        "metric definitions": short([[m.name, m.regex] for m in training.metric_definitions]),
        **script_components(spec, code_dir),
    }


@kind_components.register
def _function(step: FunctionStep, spec: JobSpec, code_dir: str) -> dict[str, str]:
    ref = spec.function
    assert ref is not None
    file = os.path.join(code_dir, ref.file) if ref.file else None
    if ref.module and not file:
        in_code = CodeScanner.module_files(ref.module, [code_dir])  # the snapshot's copy first, else installed
        if in_code:
            file = in_code[-1]
        else:
            import importlib.util

            found = importlib.util.find_spec(ref.module)
            file = found.origin if found else None
    code = fingerprint_function(file, ref.name, [code_dir], code_dir) if file else CodeFingerprint()
    try:
        arguments = short(json.dumps([list(spec.args), spec.kwargs], sort_keys=True))
    except (TypeError, ValueError):
        arguments = "pickle:" + hashlib.sha256(pickle.dumps((spec.args, spec.kwargs))).hexdigest()
    return {"function": f"{ref.module or ''}:{ref.name}", "arguments": arguments, **code_components(code)}


def compute_cache_key(step: Step, spec: JobSpec, parameters: Mapping[str, Any], work_dir: str,
                      fingerprinter: Fingerprinter, code_dir: str | None = None) -> CacheKey:
    """The cache key of one step as it is about to run; raises ArtifactNotFoundError for a missing input.

    ``code_dir``: the execution's code snapshot checked out (None: the spec names code in ``work_dir``).
    """
    components: dict[str, str] = {"kind": step.step_type, "python": sys.version.split()[0]}
    components.update(kind_components(step, spec, code_dir or work_dir))
    for name in sorted({n.name for n in walk(list(step.children()))
                        if isinstance(n, (Parameter, ParameterReference))}):
        components[f"parameter:{name}"] = short(parameters.get(name))
    for key, value in spec.env.items():
        components[f"env:{key}"] = short(value)
    for staged in spec.inputs:
        base = code_dir if staged.code_rules is not None and code_dir else work_dir  # a code folder: in the snapshot
        source = staged.source if "://" in staged.source or os.path.isabs(staged.source) \
            else os.path.join(base, staged.source)
        if staged.code_rules is not None and os.path.isdir(source):  # a code folder: what a job copies of it
            components[f"input:{staged.destination}"] = fingerprint_folder(source, [], source,
                                                                           staged.code_rules).digest
        else:
            components[f"input:{staged.destination}"] = fingerprinter.fingerprint(source)
    # a destination the user chose is part of the result; the default one (per execution) is not
    chosen = {o.output_name for o in getattr(step, "outputs", []) if getattr(o, "destination", None) is not None}
    components["outputs"] = short([[o.name, o.source, o.destination if o.name in chosen else None]
                                   for o in spec.outputs])
    if spec.property_files:
        components["property files"] = short([[p.name, p.output_name, p.path] for p in spec.property_files])
    return CacheKey(digest=combine(components), components=components)


def explain_miss(current: Mapping[str, str], previous: Mapping[str, str] | None) -> list[str]:
    """Which parts of the key differ from the newest cached entry of the step, in words."""
    if previous is None:
        return ["no earlier cached result of this step"]
    reasons = []
    for name in sorted(set(current) | set(previous)):
        before, after = previous.get(name), current.get(name)
        if before == after:
            continue
        kind, _, detail = name.partition(":")
        label = {"code": "code file", "input": "input", "parameter": "parameter", "env": "environment variable",
                 "package": "package"}.get(kind, kind)
        subject = f"{label} {detail!r}" if detail else label
        if before is None:
            reasons.append(f"{subject} is new")
        elif after is None:
            reasons.append(f"{subject} is gone")
        elif kind in ("parameter", "env", "package") or name in ("arguments", "python", "entry point",
                                                                   "hyperparameters", "interpreter"):
            reasons.append(f"{subject} changed: {before} -> {after}")
        else:
            reasons.append(f"{subject} changed")
    return reasons or ["the key is unchanged but its cached outputs are gone"]


class StepCache:
    """Finds a reusable earlier result for a key (its artifacts must still exist) and records new results."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    def lookup(self, key: CacheKey, expire_after: timedelta | None) -> CacheEntry | None:
        """The newest valid entry for the key, or None (expired or deleted artifacts make a miss)."""
        not_before = None if expire_after is None else datetime.now(UTC) - expire_after
        for entry in self.store.find_cache_entries(key.digest, not_before=not_before):
            uris = [*entry.outputs.values()]
            if "ReturnUri" in entry.properties:
                uris.append(entry.properties["ReturnUri"])
            if all(self.artifacts.exists(uri) for uri in uris):
                return entry
        return None

    def record(self, key: CacheKey, pipeline_name: str, step: Step, execution_id: str,
               outputs: Mapping[str, str], properties: Mapping[str, Any]) -> None:
        """Remember a succeeded step's outputs and properties under its key."""
        self.store.put_cache_entry(CacheEntry(
            cache_key=key.digest, pipeline_name=pipeline_name, step_name=step.name, step_kind=step.step_type,
            execution_id=execution_id, components=dict(key.components), outputs=dict(outputs),
            properties=dict(properties), created_at=datetime.now(UTC),
        ))
