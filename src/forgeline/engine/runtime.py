"""Runtime: the backends an execution works with, built once at an edge (CLI, orchestrator process, Python API).

Nothing below the edges reads the environment or constructs a backend: it is handed a Runtime.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from forgeline.config import EXECUTORS, Settings, parse_executor
from forgeline.errors import ConfigurationError, StoreNotFoundError
from forgeline.executors.base import Executor
from forgeline.jobs.placement import JobRoots
from forgeline.store.artifacts import ArtifactStore
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.sql_store import SqlMetadataStore

ExecutorFactory = Callable[..., Executor]
"""Makes the executor of one execution, given how many of its jobs may run at once (and the pipeline's own
executor name, if it names one)."""


@dataclass(frozen=True)
class Runtime:
    """Settings, metadata store, artifact store and executor factory, shared by everything below an edge."""

    settings: Settings
    store: MetadataStore
    artifacts: ArtifactStore
    executor_factory: ExecutorFactory

    @classmethod
    def build(cls, settings: Settings, *, store: MetadataStore | None = None, create: bool = True) -> Runtime:
        """The runtime ``settings`` describe; ``store``: one already open on the same database.

        ``create=False``: a SQLite database that does not exist yet is refused (StoreNotFoundError), not made.
        """
        artifacts = ArtifactStore.from_settings(settings)
        store = store or SqlMetadataStore(settings.database_url, create=create,
                                          retry_seconds=settings.store_retry_seconds)
        return cls(settings, store, artifacts, executor_factory(settings.executor, artifacts, JobRoots.of(settings),
                                                                settings.instance_types))

    @classmethod
    def at_edge(cls, settings: Settings | None = None, *, create: bool = True) -> Runtime:
        """The runtime of an edge (a Python API call): from ``settings``, or from FORGELINE_* when None."""
        return cls.build(settings or Settings.from_env(), create=create)

    @classmethod
    def for_reading(cls, settings: Settings | None = None) -> Runtime:
        """An edge's runtime that creates no database: an empty one in memory when nothing has run yet (a plan)."""
        settings = settings or Settings.from_env()
        try:
            return cls.build(settings, create=False)
        except StoreNotFoundError:
            return cls.build(settings, store=SqlMetadataStore("sqlite://"))

    @classmethod
    def from_env(cls) -> Runtime:
        """The runtime the FORGELINE_* variables describe (the orchestrator process)."""
        return cls.at_edge()


def executor_factory(name: str, artifacts: ArtifactStore, roots: JobRoots | None = None,
                     instance_types: Mapping[str, Mapping[str, Any]] | None = None) -> ExecutorFactory:
    """The factory of the executor called ``name`` (see Settings.executor); ``roots``: where it places jobs.

    The factory takes how many jobs may run at once and, optionally, the executor a pipeline names for itself
    (``Pipeline(..., executor="ray")``), which wins over ``name``.
    """
    def make(max_parallel: int, executor: str | None = None) -> Executor:
        chosen = parse_executor(executor) if executor else name
        if chosen == "local":
            from forgeline.executors.local import LocalExecutor  # the jobs it runs: only where an execution runs

            return LocalExecutor(artifacts, max_parallel, roots=roots)
        if chosen == "ray" or chosen.startswith("ray://"):
            from forgeline.executors.ray import RayExecutor  # Ray is imported only where it is used

            return RayExecutor(artifacts, chosen, roots=roots, instance_types=instance_types)
        raise ConfigurationError(f"no executor called {chosen!r}; FORGELINE_EXECUTOR accepts: {', '.join(EXECUTORS)}")

    return make
