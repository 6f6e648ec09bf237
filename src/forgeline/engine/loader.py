"""Load a user's pipeline file (``path.py`` or ``path.py:variable``) and find its Pipeline."""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from pathlib import Path

from forgeline.errors import ForgelineError, PipelineDefinitionError
from forgeline.jobs.function_loading import file_module_name
from forgeline.workflow.pipeline import Pipeline


def load_pipeline(target: str, name: str | None = None) -> Pipeline:
    """Import the file and return its pipeline: the named variable, the only Pipeline, or the one called ``name``."""
    file_part, _, variable = target.partition(":")
    path = Path(file_part)
    if path.is_dir():
        candidates = sorted(str(p) for p in path.glob("*.py") if "Pipeline(" in p.read_text(errors="replace"))
        hint = f" such as {candidates[0]}" if candidates else ""
        raise PipelineDefinitionError(f"{file_part!r} is a directory; give the pipeline file in it{hint}")
    if not path.is_file():
        raise PipelineDefinitionError(f"pipeline file {file_part!r} does not exist")
    if path.suffix == ".json":  # a forgeline definition document (Pipeline.definition(), an imported pipeline)
        return Pipeline.from_definition(path.read_text())
    module_name = file_module_name(str(path))
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PipelineDefinitionError(f"cannot import {file_part!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(path.resolve().parent))
    try:
        spec.loader.exec_module(module)
    except ForgelineError:
        raise
    except Exception as exc:  # the user's own code failed: say where, as Python would, in one line
        raise PipelineDefinitionError(f"{user_code_location(exc, path)}: {type(exc).__name__}: {exc}") from exc
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


def user_code_location(exc: BaseException, pipeline_file: Path) -> str:
    """``file:line`` of the user's code where ``exc`` arose: the innermost frame outside forgeline and Python.

    A SyntaxError names its own file and line; otherwise the innermost frame in the user's files wins, and
    the pipeline file's own frame when the error arose inside a library.
    """
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{shown(exc.filename)}:{exc.lineno}"
    chosen = user_frame(exc) or next((f for f in traceback.extract_tb(exc.__traceback__)
                                      if Path(f.filename).resolve() == pipeline_file.resolve()), None)
    return f"{shown(chosen.filename)}:{chosen.lineno}" if chosen else str(pipeline_file)


def user_frame(exc: BaseException) -> traceback.FrameSummary | None:
    """The innermost frame of ``exc``'s traceback in the user's own files (not forgeline's, not Python's)."""
    library_roots = tuple({str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
                          | {str(Path(__file__).resolve().parents[1])})
    user = [f for f in traceback.extract_tb(exc.__traceback__)
            if not f.filename.startswith("<") and not str(Path(f.filename).resolve()).startswith(library_roots)]
    return user[-1] if user else None


def shown(filename: str) -> str:
    """A file name as the user would type it: relative to the current folder when inside it."""
    relative = os.path.relpath(filename)
    return filename if relative.startswith("..") else relative
