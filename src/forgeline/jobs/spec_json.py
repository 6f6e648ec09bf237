"""JobSpec as JSON: what an executor on another machine (or a queue) receives, and reads back exactly."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from enum import Enum
from typing import Any, Union

from forgeline.errors import JobError
from forgeline.jobs.spec import JobSpec

FORMAT = 1
"""Version of the document; a reader refuses versions it does not know."""


def spec_to_json(spec: JobSpec) -> str:
    """The spec as a JSON document; JobError when a value in it (a @step argument) is not JSON."""
    try:
        return json.dumps({"format": FORMAT, "spec": _plain(spec)}, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise JobError(f"job {spec.job_id} cannot be written as JSON: {exc}") from None


def spec_from_json(text: str) -> JobSpec:
    """The spec a spec_to_json document describes; JobError when it is not one."""
    try:
        document = json.loads(text)
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r} is not {FORMAT}")
        spec: JobSpec = _build(JobSpec, document["spec"])
        return spec
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise JobError(f"not a job spec document: {exc}") from None


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _build(kind: Any, value: Any) -> Any:
    origin = typing.get_origin(kind)
    if kind is Any or value is None:
        return value
    if origin in (Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _build(options[0], value)
    if origin is tuple:
        item = typing.get_args(kind)[0]
        return tuple(_build(item, v) for v in value)
    if origin is dict:
        item = typing.get_args(kind)[1]
        return {k: _build(item, v) for k, v in value.items()}
    if isinstance(kind, type) and issubclass(kind, Enum):
        if value not in {member.value for member in kind}:
            raise ValueError(f"{value!r} is not one of: {', '.join(str(member.value) for member in kind)}")
        return kind(value)
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        known = {f.name for f in dataclasses.fields(kind)}
        unknown = set(value) - known
        if unknown:
            raise ValueError(f"{kind.__name__} has no field {sorted(unknown)[0]!r}")
        return kind(**{name: _build(hints[name], v) for name, v in value.items()})
    if kind is float and isinstance(value, int):
        return float(value)
    return value
