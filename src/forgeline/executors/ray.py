"""RayExecutor: runs each job attempt as a detached, named Ray actor on any node of a Ray cluster.

The spec is shipped (code as a snapshot, local inputs uploaded: ``ray_staging``), an actor named after the job id
runs it on a node (``ray_job``) with the resources the step asked for (``ray_resources``), and a thread of this
process asks it for progress: log bytes are appended to the step's log file here, so ``forgeline logs --follow``
reads them as for a local job; spot restarts are reported; the result ends the job. A job of ``instance_count``
N > 1 runs as N shards (``ray_shards``). A job that asks for no more than the default resources (one CPU), or
each of its shards, goes to a warm job host instead (``ray_host``), which has Ray, forgeline and s3fs imported
already and runs one job after another. A node that dies takes its actor with it: the job's result is Failed
with InfrastructureError, and the step's retry policy runs it again on a node that lives.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forgeline.errors import JobError
from forgeline.executors.base import JobRef
from forgeline.executors.futures import FutureJobs
from forgeline.executors.ray_cluster import NAMESPACE, check_artifact_root, check_checkpoints, check_feasible, connect
from forgeline.executors.ray_host import HostedJob, HostPool, hosted_jobs
from forgeline.executors.ray_job import JobActor, Progress
from forgeline.executors.ray_resources import DEFAULT_RESOURCES, actor_options, instance_table
from forgeline.executors.ray_shards import merge_shards, shard_specs
from forgeline.executors.ray_staging import ship
from forgeline.jobs.placement import JobRoots
from forgeline.jobs.results import failure_of, infrastructure_failure
from forgeline.jobs.spec import FailureKind, JobResult, JobSpec, JobStatus
from forgeline.store.artifacts import ArtifactStore

POLL_SECONDS = 0.5
"""How long one progress call waits for the job to end: the delay of log lines and of noticing the end."""
CALL_TIMEOUT_SECONDS = 30.0
"""How long shutdown waits, past the stop's grace, for the last results."""
ACTOR_PREFIX = "forgeline-job:"


def actor_name(job_id: str) -> str:
    """The name of the actor that runs job ``job_id`` (found by it after an orchestrator crash)."""
    return ACTOR_PREFIX + job_id


@dataclass
class RayJob:
    """A job submitted to a RayExecutor: its shards' actors and the future of its result."""

    spec: JobSpec
    future: Future[JobResult]
    actors: list[Any] = field(default_factory=list)
    stop_grace: float | None = None  # set once cancel was asked
    lock: threading.Lock = field(default_factory=threading.Lock)


class RayExecutor(FutureJobs[RayJob]):
    """Runs jobs on a Ray cluster; every job stages its inputs from and stores its outputs to the artifact store."""

    def __init__(self, artifacts: ArtifactStore, executor: str = "ray", *, roots: JobRoots | None = None,
                 instance_types: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        connect(executor)
        check_artifact_root(artifacts)
        self._artifacts = artifacts
        self._roots = roots  # where the step logs forwarded from the nodes are written here
        self._instance_types = instance_table(instance_types)
        self._lock = threading.Lock()
        self._jobs: dict[str, RayJob] = {}
        self._hosts = HostPool(dict(DEFAULT_RESOURCES))

    def submit(self, spec: JobSpec, on_restart: Callable[[str], None] | None = None) -> JobRef:
        """Ship the job and start its actor (one per shard) without waiting; its reference is its job id."""
        spec = replace(spec, log_path=self.log_location(spec))
        with self._lock:
            if spec.job_id in self._jobs:
                raise JobError(f"job {spec.job_id} was already submitted to this executor")
            job = RayJob(spec, Future())
            self._jobs[spec.job_id] = job
        threading.Thread(target=self._run, args=(job, on_restart), name=f"forgeline-ray:{spec.job_id}",
                         daemon=True).start()
        return JobRef(spec.job_id)

    def cancel(self, ref: JobRef, grace_seconds: float = 10.0) -> None:
        """Have the job's actors end its processes (SIGTERM, SIGKILL after the grace); its result is Stopped.

        The actors of a job an earlier executor submitted (a reference rebuilt from a stored attempt) are found
        by name and ended.
        """
        job = self._jobs.get(ref.id)
        if job is None:
            for actor in self._named_actors(ref.id) + hosted_jobs(ref.id):
                self._end_actor(actor, grace_seconds)
            return
        with job.lock:
            job.stop_grace = grace_seconds
            actors = list(job.actors)
        for actor in actors:
            actor.stop.remote(grace_seconds)

    def log_location(self, spec: JobSpec) -> str:
        """The step's log on this machine, where the nodes' log bytes are forwarded: the spec's, else the roots'."""
        if spec.log_path:
            return spec.log_path
        if self._roots is None:
            raise JobError(f"job {spec.job_id} names no log and this executor has no folders to place it in")
        return self._roots.log_path(spec.job_id)

    def logs(self, ref: JobRef) -> str:
        """The job's log as forwarded so far."""
        try:
            return Path(self._job(ref).spec.log_path).read_text(errors="replace")
        except OSError:
            return ""

    def recover(self, spec: JobSpec) -> JobResult | None:
        """Adopt the result of a job an earlier orchestrator left, or stop it (then None: run it again).

        Its actors are found by name; one that ended gives its result (its log's rest is forwarded). One still
        running is stopped and waited for, so the step never runs twice at once. No actor: it died with its node.
        """
        import ray

        spec = replace(spec, log_path=self.log_location(spec))
        shard_ids = [shard.job_id for shard in shard_specs(spec, self._artifacts)]
        hosted = {job.job_id: job for job in hosted_jobs(spec.job_id)}
        actors: list[Any] = []
        for job_id in shard_ids:
            with contextlib.suppress(ValueError):
                actors.append(ray.get_actor(actor_name(job_id), namespace=NAMESPACE))
                continue
            if job_id in hosted:
                actors.append(hosted[job_id])
        if len(actors) < len(shard_ids):
            for actor in actors:
                self._end_actor(actor, 1.0)
            return None
        ended = [self._progress(actor, 0, 0, 0.0) for actor in actors]
        if all(p is not None and p.result is not None for p in ended):
            job = RayJob(spec, Future(), actors)
            served: list[int] = ray.get([actor.served.remote() for actor in actors])
            return self._finish(job, [self._drain(actor, spec, offset) for actor, offset in zip(actors, served)])
        for actor in actors:
            self._end_actor(actor, 1.0)
        return None

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Stop the jobs still running and wait for them to end (their actors are removed)."""
        with self._lock:
            running = [job for job in self._jobs.values() if not job.future.done()]
        for job in running:
            self.cancel(JobRef(job.spec.job_id), grace_seconds)
        wait([job.future for job in running], timeout=grace_seconds + CALL_TIMEOUT_SECONDS)
        self._hosts.shrink()

    def _run(self, job: RayJob, on_restart: Callable[[str], None] | None) -> None:
        try:
            result = self._run_shards(job, on_restart)
        except Exception as exc:  # bad input, a bug, the store: still a result, or the orchestrator waits forever
            result = failure_of(exc)
        job.future.set_result(result)

    def _run_shards(self, job: RayJob, on_restart: Callable[[str], None] | None) -> JobResult:
        shards = [ship(shard, self._artifacts) for shard in shard_specs(job.spec, self._artifacts)]
        with job.lock:
            if job.stop_grace is not None:
                return stopped(job.spec)
            options = actor_options(job.spec, self._instance_types)
            check_feasible(job.spec, options)
            check_checkpoints(job.spec)
        if options == DEFAULT_RESOURCES:
            return self._each_shard(job, shards, lambda n, logs: self._run_hosted(job, shards[n], n, logs, on_restart))
        self._hosts.shrink()  # idle hosts hold CPUs this job may need
        with job.lock:
            if job.stop_grace is not None:
                return stopped(job.spec)
            for shard in shards:
                job.actors.append(remote_actor().options(
                    name=actor_name(shard.job_id), namespace=NAMESPACE, lifetime="detached", max_restarts=0,
                    max_concurrency=4, **options).remote(shard.to_json(), self._artifacts.root,
                                                         self._artifacts.options_by_protocol))
        return self._each_shard(job, shards, lambda n, logs: self._follow(job, n, job.actors[n], logs, on_restart))

    def _each_shard(self, job: RayJob, shards: list[JobSpec],
                    run: Callable[[int, ShardLogs], JobResult]) -> JobResult:
        """``run(n, logs)`` for every shard n at once, their results made the job's one result."""
        logs = ShardLogs(job.spec.log_path, len(shards))
        if len(shards) == 1:
            return run(0, logs)
        with ThreadPoolExecutor(len(shards), thread_name_prefix="forgeline-ray-shard") as threads:
            results = list(threads.map(lambda n: run(n, logs), range(len(shards))))
        return self._finish(job, results)

    def _run_hosted(self, job: RayJob, shipped: JobSpec, shard: int, logs: ShardLogs,
                    on_restart: Callable[[str], None] | None) -> JobResult:
        """Run a job (or one shard of it) of the default resources on a warm host."""
        hosted = self._hosts.run(shipped.job_id, shipped.to_json(), self._artifacts.root,
                                 self._artifacts.options_by_protocol, give_up=lambda: job.stop_grace is not None)
        if hosted is None:
            return stopped(job.spec)
        with job.lock:
            job.actors.append(hosted)
            stop_grace = job.stop_grace
        if stop_grace is not None:  # asked while the host was being found: cancel saw no actor yet
            hosted.stop.remote(stop_grace)
        return self._follow(job, shard, hosted, logs, on_restart)

    def _follow(self, job: RayJob, shard: int, actor: Any, logs: ShardLogs,
                on_restart: Callable[[str], None] | None) -> JobResult:
        offset, restarts, started = 0, 0, [False]
        while True:
            progress = self._progress(actor, offset, restarts, POLL_SECONDS,
                                      give_up=lambda: not started[0] and job.stop_grace is not None)
            if progress is None:  # the actor died: its node, or the actor process, was lost
                if isinstance(actor, HostedJob):
                    self._hosts.discard(actor.host)
                return JobResult(status=JobStatus.FAILED, failure_kind=FailureKind.INFRASTRUCTURE_ERROR,
                                 failure_reason=f"the Ray node running job {job.spec.job_id} (or its actor) died "
                                                "during the job")
            if not progress.node_id:  # stopped before its actor ever started: nothing of it ran
                self._end_actor(actor, None)
                return stopped(job.spec)
            if not started[0]:
                logs.note(shard, f"running on Ray node {progress.node_id[:12]}")
            started[0] = True
            logs.write(shard, progress.log)
            offset = progress.log_offset
            for reason in progress.restarts:
                restarts += 1
                if on_restart is not None:
                    on_restart(reason)
            if progress.drained:
                assert progress.result is not None
                self._end_actor(actor, None)
                return progress.result

    def _progress(self, actor: Any, offset: int, restarts: int, timeout: float,
                  give_up: Callable[[], bool] = lambda: False) -> Progress | None:
        """The actor's progress; None once it is dead; an empty Progress (no node) when ``give_up`` said so."""
        import ray
        from ray.exceptions import RayActorError

        call = actor.progress.remote(offset, restarts, timeout)
        while True:
            ready, _ = ray.wait([call], timeout=timeout + 1.0)
            if ready:
                break
            if give_up():
                ray.cancel(call)
                return Progress(log=b"", log_offset=offset)
        try:
            answer: Progress = ray.get(call)
            return answer
        except RayActorError:
            return None

    def _drain(self, actor: Any, spec: JobSpec, offset: int) -> JobResult:
        logs = ShardLogs(spec.log_path, 1)
        while True:
            progress = self._progress(actor, offset, 0, 0.0)
            if progress is None or progress.result is None:
                return infrastructure_failure(JobError(f"job {spec.job_id}: its actor died while adopted"))
            logs.write(0, progress.log)
            offset = progress.log_offset
            if progress.drained:
                self._end_actor(actor, None)
                return progress.result

    def _finish(self, job: RayJob, results: list[JobResult]) -> JobResult:
        if len(results) == 1:
            return results[0]
        return merge_shards(job.spec, results, self._artifacts)

    def _named_actors(self, job_id: str) -> list[Any]:
        """The live actors of job ``job_id``: its own, or its shards' (``<job id>#1``, ``#2``, ...)."""
        import ray

        actors = []
        for name in itertools.chain([job_id], (f"{job_id}#{n}" for n in itertools.count(1))):
            try:
                actors.append(ray.get_actor(actor_name(name), namespace=NAMESPACE))
            except ValueError:
                if name != job_id:
                    break
        return actors

    def _end_actor(self, actor: Any, stop_grace: float | None) -> None:
        """Remove an actor; with ``stop_grace``, first have it end its job's processes and wait for that."""
        import ray

        if stop_grace is not None:
            actor.stop.remote(stop_grace)
            while (progress := self._progress(actor, 0, 0, POLL_SECONDS)) is not None and progress.result is None:
                pass
        if isinstance(actor, HostedJob):
            self._hosts.release(actor)
            return
        with contextlib.suppress(Exception):
            ray.kill(actor)


def stopped(spec: JobSpec) -> JobResult:
    """The result of a job stopped before it ran."""
    return JobResult(status=JobStatus.STOPPED, failure_reason=f"job {spec.job_id} was stopped before it started")


_remote: Any = None


def remote_actor() -> Any:
    """JobActor as a Ray actor class, made once per process."""
    global _remote
    if _remote is None:
        import ray

        _remote = ray.remote(JobActor)
    return _remote


class ShardLogs:
    """Appends forwarded log bytes to the step's log; with several shards, line by line, each marked."""

    def __init__(self, log_path: str, shards: int) -> None:
        self._path = Path(log_path)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._shards = shards
        self._partial = [b""] * shards
        self._lock = threading.Lock()

    def note(self, shard: int, message: str) -> None:
        """Add one ``[forgeline] ...`` line of forgeline's own (where the shard runs) to the step's log."""
        prefix = f"[shard {shard + 1}/{self._shards}] " if self._shards > 1 else ""
        with self._lock, open(self._path, "ab") as log:
            log.write(f"{prefix}[forgeline] {message}\n".encode())

    def write(self, shard: int, chunk: bytes) -> None:
        """Append what shard ``shard`` logged next."""
        if not chunk:
            return
        if self._shards > 1:
            lines = (self._partial[shard] + chunk).split(b"\n")
            self._partial[shard] = lines.pop()
            chunk = b"".join(f"[shard {shard + 1}/{self._shards}] ".encode() + line + b"\n" for line in lines)
        with self._lock, open(self._path, "ab") as log:
            log.write(chunk)
