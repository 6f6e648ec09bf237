"""Load a user's pipeline file (``path.py`` or ``path.py:variable``) and find its Pipeline."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from forgeline.errors import PipelineDefinitionError
from forgeline.jobs.function_loading import file_module_name
from forgeline.workflow.pipeline import Pipeline


def load_pipeline(target: str, name: str | None = None) -> Pipeline:
    """Import the file and return its pipeline: the named variable, the only Pipeline, or the one called ``name``."""
    file_part, _, variable = target.partition(":")
    path = Path(file_part)
    if not path.is_file():
        raise PipelineDefinitionError(f"pipeline file {file_part!r} does not exist")
    module_name = file_module_name(str(path))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PipelineDefinitionError(f"cannot import {file_part!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.resolve().parent))
    if variable:
        found = getattr(module, variable, None)
        if not isinstance(found, Pipeline):
            raise PipelineDefinitionError(f"{file_part!r} has no Pipeline named {variable!r}")
        return found
    pipelines = [v for v in vars(module).values() if isinstance(v, Pipeline)]
    if name is not None:
        pipelines = [p for p in pipelines if p.name == name]
    unique = list({id(p): p for p in pipelines}.values())
    if len(unique) == 1:
        return unique[0]
    if not unique:
        raise PipelineDefinitionError(
            f"{file_part!r} defines no Pipeline" + (f" named {name!r}" if name else "")
        )
    raise PipelineDefinitionError(
        f"{file_part!r} defines several pipelines ({', '.join(p.name for p in unique)}); "
        f"choose one with {file_part}:<variable>"
    )
