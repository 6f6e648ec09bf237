"""FutureJobs: poll, wait and wait_any for an executor that keeps one Future per submitted job."""

from __future__ import annotations

from collections.abc import Collection
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Generic, Protocol, TypeVar

from forgeline.errors import JobError
from forgeline.executors.base import JobRef
from forgeline.jobs.spec import JobResult


class HasFuture(Protocol):
    """A submitted job whose result arrives through a Future."""

    @property
    def future(self) -> Future[JobResult]:
        """Done when the job has ended, with its result."""
        ...


J = TypeVar("J", bound=HasFuture)


class FutureJobs(Generic[J]):
    """The part of the executor protocol that only reads the jobs' Futures (kept in ``self._jobs`` by id)."""

    _jobs: dict[str, J]

    def poll(self, ref: JobRef) -> JobResult | None:
        """The job's result once it has ended, else None."""
        future = self._job(ref).future
        return future.result() if future.done() else None

    def wait(self, ref: JobRef, timeout: float | None = None) -> JobResult | None:
        """Block until the job ends (its result) or ``timeout`` seconds pass (None)."""
        done, _ = wait([self._job(ref).future], timeout=timeout)
        return self.poll(ref) if done else None

    def wait_any(self, refs: Collection[JobRef], timeout: float | None = None) -> list[JobRef]:
        """Block until one of ``refs`` has ended or ``timeout`` seconds pass; the ones that have ended."""
        futures = {self._job(ref).future: ref for ref in refs}
        done, _ = wait(list(futures), timeout=timeout, return_when=FIRST_COMPLETED)
        return [ref for future, ref in futures.items() if future in done]

    def _job(self, ref: JobRef) -> J:
        job = self._jobs.get(ref.id)
        if job is None:
            raise JobError(f"job {ref.id} was not submitted to this executor")
        return job
