"""Property files: JSON files a job writes into an output, parsed afterwards so expressions can read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from forgeline.errors import JobError
from forgeline.jobs.spec import JobSpec
from forgeline.jobs.workspace import job_path


def read_property_files(spec: JobSpec) -> dict[str, Any]:
    """Parse every property file of a finished job from its job directory, keyed by property file name."""
    sources = {output.name: output.source for output in spec.outputs}
    parsed: dict[str, Any] = {}
    for prop in spec.property_files:
        what = f"property file '{prop.name}' ({prop.path} in output '{prop.output_name}')"
        if prop.output_name not in sources:
            known = ", ".join(repr(name) for name in sources) or "none"
            raise JobError(f"{what}: the step has no output '{prop.output_name}' (its outputs: {known})")
        folder = job_path(Path(spec.job_dir), sources[prop.output_name], f"output '{prop.output_name}'")
        path = folder / prop.path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise JobError(f"{what} was not written by the job: {path} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise JobError(f"{what} could not be read: {exc}") from None
        try:
            parsed[prop.name] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise JobError(f"{what} is not valid JSON: {exc}") from None
    return parsed


def read_properties_file(spec: JobSpec) -> dict[str, Any]:
    """The properties a forgeline entry point wrote for its step (``JobSpec.properties_file``)."""
    assert spec.properties_file is not None
    path = job_path(Path(spec.job_dir), spec.properties_file, "properties file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JobError(f"the job wrote no properties: {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise JobError(f"the job's properties {path} could not be read: {exc}") from None
    if not isinstance(document, dict):
        raise JobError(f"the job's properties {path} are not a JSON object")
    return document
