"""Step kinds whose jobs packages above the engine build (reports, serving), loaded by module name on first need.

The engine may not import those packages: they build on it. Each module registers its job builder with
``build_job_spec`` when imported; the engine imports them by name the first time a step has no builder.
"""

from __future__ import annotations

import importlib

EXTENSION_MODULES = ("forgeline.reports.step_job", "forgeline.serving.deploy_step")
_loaded: list[str] = []


def load_step_kinds() -> bool:
    """Import every extension module once; True when this call imported any (a retry of the lookup may succeed)."""
    missing = [name for name in EXTENSION_MODULES if name not in _loaded]
    for name in missing:
        importlib.import_module(name)
        _loaded.append(name)
    return bool(missing)
