"""Packages whose public names are imported from their defining modules on first use (PEP 562).

A package's ``__init__`` then costs nothing to import, and ``from forgeline.jobs import runner_for`` still works.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(package: str, defined_in: Mapping[str, str],
               namespace: dict[str, Any]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package`` (its globals: ``namespace``) for the names of
    ``defined_in`` (name → module under the package)."""

    def getattr_(name: str) -> Any:
        module = defined_in.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value  # later lookups find it without calling __getattr__
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *defined_in})

    return getattr_, dir_
