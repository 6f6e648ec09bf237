"""The one mapping from a job's kind to what runs it, and to what collects its result after an orchestrator died."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from forgeline.jobs.control import JobControl
from forgeline.jobs.function import WorkerSource, run_function_job
from forgeline.jobs.processing import adopt_processing_job, run_processing_job
from forgeline.jobs.spec import JobKind, JobResult, JobSpec
from forgeline.jobs.training import adopt_training_job, run_training_job
from forgeline.store.artifacts import ArtifactStore


@dataclass(frozen=True)
class JobEnvironment:
    """What jobs on this machine share: the artifact store, warm @step workers, the default interpreter."""

    artifacts: ArtifactStore
    workers: WorkerSource
    python: str = sys.executable


@dataclass(frozen=True)
class KindRunner:
    """How one kind of job runs to its end in the calling thread, and how its result is adopted."""

    run: Callable[[JobSpec, JobEnvironment, JobControl], JobResult]
    # the result of an attempt that ended while no orchestrator watched it; None: not ended, or run it again
    adopt: Callable[[JobSpec, ArtifactStore], JobResult | None]


def _processing(spec: JobSpec, env: JobEnvironment, control: JobControl) -> JobResult:
    return run_processing_job(spec, env.artifacts, control, python=env.python)


def _training(spec: JobSpec, env: JobEnvironment, control: JobControl) -> JobResult:
    return run_training_job(spec, env.artifacts, control, python=env.python)


def _function(spec: JobSpec, env: JobEnvironment, control: JobControl) -> JobResult:
    return run_function_job(spec, env.artifacts, env.workers, control)


def _not_adoptable(spec: JobSpec, artifacts: ArtifactStore) -> JobResult | None:
    return None  # a @step call ran in a worker of the dead orchestrator: its reply is lost, it runs again


def runner_for(kind: JobKind) -> KindRunner:
    """The runner of jobs of ``kind``."""
    if kind == JobKind.PROCESSING:
        return KindRunner(_processing, adopt_processing_job)
    if kind == JobKind.TRAINING:
        return KindRunner(_training, adopt_training_job)
    return KindRunner(_function, _not_adoptable)
