"""What a job is: the contract between forgeline and user code (processing, training, transform, @step).

Each public name is imported from its module on first use: ``from forgeline.jobs import runner_for, JobSpec``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from forgeline.lazy_names import lazy_names

if TYPE_CHECKING:
    from forgeline.jobs.runners import JobEnvironment, KindRunner, runner_for
    from forgeline.jobs.spec import FailureKind, JobKind, JobResult, JobSpec, JobStatus

_DEFINED_IN: dict[str, str] = {
    "runner_for": "runners", "JobEnvironment": "runners", "KindRunner": "runners",
    "JobSpec": "spec", "JobKind": "spec", "JobResult": "spec", "JobStatus": "spec", "FailureKind": "spec",
}
__all__ = ["FailureKind", "JobEnvironment", "JobKind", "JobResult", "JobSpec", "JobStatus", "KindRunner", "runner_for"]
__getattr__, __dir__ = lazy_names(__name__, _DEFINED_IN, globals())
