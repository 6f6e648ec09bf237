"""Where a job runs, behind one Executor protocol (executors/base.py); LocalExecutor runs jobs on this machine.

Each public name is imported from its module on first use: ``from forgeline.executors import Executor, JobRef``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forgeline.lazy_names import lazy_names

if TYPE_CHECKING:
    from forgeline.executors.base import Executor, JobRef
    from forgeline.executors.local import LocalExecutor
    from forgeline.executors.ray import RayExecutor

_DEFINED_IN: dict[str, str] = {
    "Executor": "base", "JobRef": "base", "LocalExecutor": "local", "RayExecutor": "ray",
}
__all__ = ["Executor", "JobRef", "LocalExecutor", "RayExecutor"]
__getattr__, __dir__ = lazy_names(__name__, _DEFINED_IN, globals())
