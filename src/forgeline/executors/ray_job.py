"""The node side of a Ray job: one detached, named actor per job attempt runs it with the job kind's runner.

The actor lands the shipped spec (code restored from its snapshot, inputs staged from the artifact store), runs
``runner_for(kind).run`` in a thread and answers :meth:`JobActor.progress` calls with the log bytes written since
an offset, the spot restarts since a count, and the result once there is one. Being detached and named after the
job id, it outlives an orchestrator that dies: the next one finds it by name, adopts its result or stops it.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeline.executors.ray_staging import land
from forgeline.executors.worker_pool import WarmWorkerPool
from forgeline.jobs.control import JobControl
from forgeline.jobs.results import failure_of, infrastructure_failure
from forgeline.jobs.runners import JobEnvironment, runner_for
from forgeline.jobs.spec import JobResult, JobSpec, JobStatus
from forgeline.store.artifacts import ArtifactStore

LOG_CHUNK_BYTES = 1024 * 1024
"""At most this much log is sent back per progress call; the orchestrator asks again at once for more."""
SHARD_INDEX_ENV = "FORGELINE_SHARD_INDEX"
SHARD_COUNT_ENV = "FORGELINE_SHARD_COUNT"


@dataclass(frozen=True)
class Progress:
    """What a job did since the orchestrator last asked: log bytes, restarts, and its result once ended."""

    log: bytes
    log_offset: int  # where the next call should start reading
    restarts: tuple[str, ...] = ()
    result: JobResult | None = None
    node_id: str = ""

    @property
    def drained(self) -> bool:
        """True once the job has ended and every byte of its log has been sent."""
        return self.result is not None and len(self.log) < LOG_CHUNK_BYTES


class JobActor:
    """Runs one job attempt on the node Ray placed it on (use through ``ray.remote``)."""

    def __init__(self, spec_json: str, artifact_root: str, storage_options: dict[str, dict[str, Any]],
                 workers: WarmWorkerPool | None = None) -> None:
        self._artifacts = ArtifactStore(artifact_root, options_by_protocol=storage_options)
        self._shipped = JobSpec.from_json(spec_json)
        self._control = JobControl(on_restart=self._restarted)
        self._restarts: list[str] = []
        self._result: JobResult | None = None
        self._ended = threading.Event()
        self._log_path: str | None = None
        self._served = 0  # log bytes already sent back: an orchestrator adopting the job asks for the rest
        self._owns_workers = workers is None  # a warm host lends its own, kept between jobs
        self._workers = workers or WarmWorkerPool(1, python=sys.executable)
        self._thread = threading.Thread(target=self._run, name="forgeline-ray-job", daemon=True)
        self._thread.start()

    def progress(self, log_offset: int, restarts_seen: int, timeout: float) -> Progress:
        """Wait up to ``timeout`` seconds for the job to end; what it logged and did since the given marks."""
        self._ended.wait(timeout)
        result = self._result if self._ended.is_set() else None  # read before the log, so no byte is missed
        chunk = b""
        if self._log_path is not None:
            try:
                with open(self._log_path, "rb") as log:
                    log.seek(log_offset)
                    chunk = log.read(LOG_CHUNK_BYTES)
            except OSError:
                chunk = b""
        import ray  # the actor runs inside Ray; this module never imports it at the top

        self._served = max(self._served, log_offset)  # asking from here: what came before was written
        return Progress(log=chunk, log_offset=log_offset + len(chunk), restarts=tuple(self._restarts[restarts_seen:]),
                        result=result, node_id=ray.get_runtime_context().get_node_id())

    def served(self) -> int:
        """How many log bytes an orchestrator has taken so far (a successor forwards only the rest)."""
        return self._served

    def stop(self, grace_seconds: float) -> None:
        """End the job's processes (SIGTERM, SIGKILL after ``grace_seconds``); its result is Stopped."""
        self._control.stop(grace_seconds)

    def ended(self) -> bool:
        """True once the job has a result."""
        return self._ended.is_set()

    def wait_ended(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the job to end; whether it has."""
        return self._ended.wait(timeout)

    def pid(self) -> int:
        """This actor's process id (the fault tests look for it)."""
        return os.getpid()

    def _restarted(self, reason: str) -> None:
        self._restarts.append(reason)

    def _run(self) -> None:
        try:
            try:
                spec = land(self._shipped, self._artifacts)
            except Exception as exc:  # the snapshot or the node's folder: reported like any staging failure
                self._result = failure_of(exc)
                return
            self._log_path = spec.log_path
            Path(spec.log_path).unlink(missing_ok=True)  # a reused folder (the same machine) starts a fresh log
            env = JobEnvironment(self._artifacts, self._workers, sys.executable)
            self._result = runner_for(spec.kind).run(spec, env, self._control)
            if self._result.status is JobStatus.SUCCEEDED:
                shutil.rmtree(spec.job_dir, ignore_errors=True)  # its outputs are in the store
        except Exception as exc:  # a bug must still end as a result, or the orchestrator waits forever
            self._result = infrastructure_failure(exc)
        finally:
            if self._owns_workers:
                self._workers.shutdown()
            self._ended.set()
