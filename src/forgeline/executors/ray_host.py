"""Warm job hosts: long-lived Ray actors that run one job after another, so a job does not pay a worker's start.

A new actor is a new Ray worker process that imports Ray, forgeline and s3fs before its job can start (seconds).
A :class:`JobHost` has done that once: it takes jobs one at a time (as spec JSON), keeps its warm function worker
between them and holds the default resources of a job (one CPU) while it lives, so jobs that ask for no more are
scheduled as before; the shards of a job of that size run on hosts too, one each. Hosts are detached and named
``forgeline-host:<id>``: after an orchestrator crash the next one finds a job and its shards by the job's id by
asking the hosts (:func:`hosted_jobs`), adopts their results or stops them. A host idle for :data:`IDLE_SECONDS`
ends itself, so a dead orchestrator's hosts give their CPUs back.

:class:`HostPool` is the orchestrator's side: it hands a job to an idle host, or starts a host while the cluster
has CPUs for one more, else waits for one to be free; :class:`HostedJob` lets the executor talk to a hosted job as
to a per-job actor (``progress``, ``served``, ``stop``).
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from forgeline.errors import JobError
from forgeline.executors.ray_cluster import NAMESPACE
from forgeline.executors.ray_job import JobActor, Progress
from forgeline.executors.worker_pool import WarmWorkerPool

HOST_PREFIX = "forgeline-host:"
IDLE_SECONDS = 10.0
"""A host that ran no job for this long ends itself (and frees its CPU)."""
FIND_TIMEOUT_SECONDS = 10.0
"""How long finding a job among the hosts waits for their answers (a host still starting never answers)."""
WARM_IMPORTS = ("s3fs", "forgeline.jobs.function")


class JobHost:
    """Runs the jobs handed to it one at a time on the node Ray placed it on (use through ``ray.remote``)."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        import importlib

        for module in WARM_IMPORTS:  # what a job would import first, imported before any job comes
            try:
                importlib.import_module(module)
            except ImportError:
                pass
        self._workers = WarmWorkerPool(1, python=sys.executable)
        self._lock = threading.Lock()
        self._job: JobActor | None = None
        self._job_id: str | None = None
        self._retired = False
        self._idle_since = time.monotonic()
        self._idle_seconds = idle_seconds
        threading.Thread(target=self._retire_when_idle, name="forgeline-host-idle", daemon=True).start()

    def start(self, job_id: str, spec_json: str, artifact_root: str,
              storage_options: dict[str, dict[str, Any]]) -> bool:
        """Start job ``job_id``; False if this host is busy or ending (give the job to another)."""
        with self._lock:
            if self._retired or self._job is not None:
                return False
            self._job = JobActor(spec_json, artifact_root, storage_options, workers=self._workers)
            self._job_id = job_id
            return True

    def job_id(self) -> str | None:
        """The id of the job this host holds (running, or ended and not yet taken), else None."""
        return self._job_id

    def progress(self, job_id: str, log_offset: int, restarts_seen: int, timeout: float) -> Progress:
        """:meth:`JobActor.progress` of job ``job_id``."""
        return self._held(job_id).progress(log_offset, restarts_seen, timeout)

    def served(self, job_id: str) -> int:
        """:meth:`JobActor.served` of job ``job_id``."""
        return self._held(job_id).served()

    def stop(self, job_id: str, grace_seconds: float) -> None:
        """End job ``job_id``'s processes (SIGTERM, SIGKILL after ``grace_seconds``); its result is Stopped."""
        self._held(job_id).stop(grace_seconds)

    def release(self, job_id: str) -> None:
        """Forget job ``job_id`` (stopping it first if it still runs): the host is free for the next job."""
        with self._lock:
            job = self._job if self._job_id == job_id else None
        if job is None:
            return
        if not job.ended():
            job.stop(1.0)
            job.wait_ended(60.0)
        with self._lock:
            if self._job is job:
                self._job, self._job_id = None, None
                self._idle_since = time.monotonic()

    def pid(self) -> int:
        """This host's process id."""
        import os

        return os.getpid()

    def _held(self, job_id: str) -> JobActor:
        job = self._job
        if job is None or self._job_id != job_id:
            raise JobError(f"job {job_id} is not held by this job host")
        return job

    def _retire_when_idle(self) -> None:
        import ray

        while True:
            time.sleep(min(1.0, self._idle_seconds))
            with self._lock:
                if self._job is None and time.monotonic() - self._idle_since >= self._idle_seconds:
                    self._retired = True
                    break
        self._workers.shutdown()
        ray.kill(ray.get_runtime_context().current_actor, no_restart=True)


class _Call:
    """``method.remote(...)`` of a hosted job: the host's method with the job id first."""

    def __init__(self, method: Any, job_id: str) -> None:
        self._method = method
        self._job_id = job_id

    def remote(self, *args: Any) -> Any:
        """Call the host's method for this job (an object ref)."""
        return self._method.remote(self._job_id, *args)


class HostedJob:
    """A job running on a warm host, called like a per-job actor."""

    def __init__(self, host: Any, job_id: str) -> None:
        self.host = host
        self.job_id = job_id
        self.progress = _Call(host.progress, job_id)
        self.served = _Call(host.served, job_id)
        self.stop = _Call(host.stop, job_id)


_remote: Any = None


def remote_host() -> Any:
    """JobHost as a Ray actor class, made once per process."""
    global _remote
    if _remote is None:
        import ray

        _remote = ray.remote(JobHost)
    return _remote


class HostPool:
    """This orchestrator's warm hosts: jobs of the default resources go to an idle one, or to a new one."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options  # the resources a host holds: those of a job that asks for nothing
        self._cond = threading.Condition()
        self._hosts: set[Any] = set()
        self._idle: list[Any] = []

    def run(self, job_id: str, spec_json: str, artifact_root: str, storage_options: dict[str, dict[str, Any]],
            give_up: Callable[[], bool]) -> HostedJob | None:
        """Start the job on a host and return it; None if ``give_up`` said so before it started."""
        import ray
        from ray.exceptions import RayActorError

        while True:
            host = self._acquire(give_up)
            if host is None:
                return None
            call = host.start.remote(job_id, spec_json, artifact_root, storage_options)
            while not ray.wait([call], timeout=1.0)[0]:  # a new host waits for a CPU, then imports
                if give_up():
                    self.discard(host)
                    return None
            try:
                if ray.get(call):
                    return HostedJob(host, job_id)
            except RayActorError:
                pass
            self.discard(host)  # it ended itself, idle too long, or died: try another

    def release(self, job: HostedJob) -> None:
        """The job has ended and its result was taken: its host is free for the next job (or removed if foreign)."""
        import ray

        try:
            ray.get(job.host.release.remote(job.job_id))
        except Exception:
            self.discard(job.host)
            return
        with self._cond:
            if job.host in self._hosts:
                self._idle.append(job.host)
                self._cond.notify()
                return
        ray.kill(job.host)  # an earlier orchestrator's host, whose job was adopted or stopped

    def discard(self, host: Any) -> None:
        """Remove a host (dead, ending, or not wanted any more)."""
        import ray

        with self._cond:
            self._hosts.discard(host)
            if host in self._idle:
                self._idle.remove(host)
            self._cond.notify()
        try:
            ray.kill(host)
        except Exception:
            pass

    def shrink(self) -> None:
        """Remove the idle hosts, so a job that asks for more resources finds them free."""
        with self._cond:
            idle, self._idle = self._idle, []
        for host in idle:
            self.discard(host)

    def _acquire(self, give_up: Callable[[], bool]) -> Any:
        import ray

        with self._cond:
            while True:
                if give_up():
                    return None
                if self._idle:
                    return self._idle.pop()
                cpus: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
                if len(self._hosts) < max(1, int(cpus.get("CPU", 1))):  # no more hosts than CPUs: none waits
                    host = remote_host().options(
                        name=HOST_PREFIX + uuid.uuid4().hex, namespace=NAMESPACE, lifetime="detached",
                        max_restarts=0, max_concurrency=8, **self._options).remote()
                    self._hosts.add(host)
                    return host
                self._cond.wait(0.5)


def find_hosted(job_id: str) -> HostedJob | None:
    """The job ``job_id`` on whichever warm host holds it, else None."""
    return next((job for job in hosted_jobs(job_id) if job.job_id == job_id), None)


def hosted_jobs(job_id: str) -> list[HostedJob]:
    """The jobs on warm hosts whose id is ``job_id`` or that of one of its shards (``<job id>#1``, ...)."""
    import ray

    listed = ray.util.list_named_actors(all_namespaces=True)  # this driver's own namespace may be another one
    names = [entry["name"] for entry in listed if entry["namespace"] == NAMESPACE]
    hosts = []
    for name in names:
        if name.startswith(HOST_PREFIX):
            try:
                hosts.append(ray.get_actor(name, namespace=NAMESPACE))
            except ValueError:
                continue
    calls: dict[Any, Any] = {host.job_id.remote(): host for host in hosts}
    ready, _ = ray.wait(list(calls), num_returns=len(calls), timeout=FIND_TIMEOUT_SECONDS) if calls else ([], [])
    found = []
    for call in ready:
        try:
            held = ray.get(call)
        except Exception:
            continue
        if held == job_id or (isinstance(held, str) and held.startswith(job_id + "#")):
            found.append(HostedJob(calls[call], held))
    return found
