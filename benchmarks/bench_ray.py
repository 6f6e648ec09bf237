"""Ray executor: what a job costs on Ray against the local executor, and what a large cluster would ask of the
orchestrator and the metadata store.

Starts a two-node local Ray cluster (a head and a second node, one CPU each, on 127.0.0.1) and moto's S3 server
in this process; Ray runs use an S3 artifact root (a local root is refused on two nodes), local runs the local
executor and a local root, each execution in a fresh FORGELINE_HOME.

1. Chains of --chains no-op processing steps (each after the previous one), local and on Ray: seconds per step.
2. A fan-out of --fan-out independent one-second steps on Ray: wall time against the cores' bound (N × 1 s / 2).
3. Batch transform of --rows rows (8 numeric columns, the file of bench_transform.py cut into 8 parts) with
   scikit-learn's LogisticRegression, instance_count=2: locally (two worker processes) and on Ray (two shards, one
   per node), step duration.
4. --tasks concurrent no-op Ray tasks from one driver (what 1,000 concurrent steps would be for the
   orchestrator): wall time, the driver's CPU seconds and peak memory; --tasks progress calls to one actor (the
   orchestrator polls each running job twice a second); and the metadata store's single-row writes per second
   (each step costs two transitions, start and end, plus its events).

    python benchmarks/bench_ray.py [--chains 10,50] [--fan-out 100] [--rows 1000000] [--tasks 1000] [--no-readme]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import logging
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from readme_section import write_section

import forgeline
from forgeline.executors.ray import POLL_SECONDS
from forgeline.jobs.process_tree import SHARED_SERVER_ARGUMENT
from forgeline.workflow import (
    Model,
    ParallelismConfiguration,
    Pipeline,
    ProcessingStep,
    TransformInput,
    TransformStep,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from executors.ray_fixtures import RAY_ENV, RayCluster, start_cluster  # noqa: E402  (the tests' local cluster)

BEGIN = "<!-- ray:begin (written by bench_ray.py) -->"
END = "<!-- ray:end -->"
HEADING = "## Ray executor (`bench_ray.py`)"
SETTINGS_ENV = ("FORGELINE_HOME", "FORGELINE_DATABASE_URL", "FORGELINE_ARTIFACT_ROOT", "FORGELINE_EXECUTOR",
                "FORGELINE_STORAGE_OPTIONS")
PARTS = 8


class BenchmarkError(Exception):
    """An execution did not succeed, so its timing means nothing."""


@contextlib.contextmanager
def settings(env: dict[str, str]) -> Iterator[None]:
    """Run with exactly these FORGELINE_* settings (and a fresh home), restoring the caller's afterwards."""
    saved = {key: os.environ.get(key) for key in SETTINGS_ENV}
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as home:
        for key in SETTINGS_ENV:
            os.environ.pop(key, None)
        os.environ.update({"FORGELINE_HOME": home, **env})
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def run(pipeline: Pipeline, timeout: float) -> tuple[float, dict[str, float]]:
    """Wall seconds of one execution and each step's duration; raise unless every step succeeded."""
    started = time.perf_counter()
    execution = pipeline.start()
    execution.wait(timeout=timeout)
    wall = time.perf_counter() - started
    record = execution.record()
    if record.status.value != "Succeeded":
        raise BenchmarkError(f"{pipeline.name}: {record.status.value}: {record.failure_reason}")
    steps = {s.name: (s.ended_at - s.started_at).total_seconds() for s in execution.list_steps()}
    return wall, steps


def chain(length: int, script: Path) -> Pipeline:
    steps: list[ProcessingStep] = []
    for n in range(length):
        steps.append(ProcessingStep(name=f"Step{n}", code=str(script), depends_on=steps[-1:]))
    return Pipeline(name=f"bench-ray-chain-{length}", steps=steps, check_files=False)


def fan_out(width: int, script: Path) -> Pipeline:
    steps = [ProcessingStep(name=f"Sleep{n}", code=str(script)) for n in range(width)]
    return Pipeline(name=f"bench-ray-fan-out-{width}", steps=steps,
                    parallelism_config=ParallelismConfiguration(max_parallel_steps=width))


def transform(data: Path, model: Path) -> Pipeline:
    step = TransformStep(name="Predict", model=Model(model_data=str(model)),
                         inputs=TransformInput(data=str(data), content_type="text/csv", split_type="Line"),
                         instance_count=2, accept="text/csv")
    return Pipeline(name="bench-ray-transform", steps=[step])


def split_data(rows: int, root: Path) -> tuple[Path, Path]:
    """bench_transform.py's data and model; the CSV cut into PARTS files (shards split a folder by file).

    The file is streamed into its parts line by line: 10 M rows are about 900 MB, never held in memory at once.
    """
    from bench_transform import generate

    space = generate(rows, root)
    parts = root / f"parts-{rows}"
    if not parts.exists():
        staging = root / "parts.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        per = -(-rows // PARTS)
        with space.data.open("rb") as source:
            for index in range(PARTS):
                with (staging / f"part-{index}.csv").open("wb") as part:
                    part.writelines(itertools.islice(source, per))
        staging.rename(parts)
    return parts, space.model


class PeakMemory:
    """The peak total resident memory of this process, the Ray cluster's and the shared job servers' processes
    (each with every process below it), sampled every half second while it is entered."""

    def __init__(self, cluster: RayCluster) -> None:
        self._marker = str(cluster.temp_dir).encode()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.peak_mb = 0.0

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_mb = max(self.peak_mb, self.total_mb())

    def total_mb(self) -> float:
        """The resident memory of the processes watched, now."""
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        roots = {os.getpid()}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                command = (entry / "cmdline").read_bytes()
            except (OSError, IndexError):
                continue
            pid = int(entry.name)
            parents[pid], rss[pid] = int(fields[1]), int(fields[21])
            if self._marker in command or SHARED_SERVER_ARGUMENT in command.split(b"\0"):
                roots.add(pid)
        watched = set(roots)
        changed = True
        while changed:
            below = {pid for pid, parent in parents.items() if parent in watched} - watched
            watched |= below
            changed = bool(below)
        return sum(rss.get(pid, 0) for pid in watched) * resource.getpagesize() / 1024 / 1024


def concurrent_tasks(cluster: RayCluster, count: int) -> dict[str, float]:
    """Wall time, driver CPU and peak memory of ``count`` no-op tasks in flight at once, and of actor calls."""
    import ray

    ray.init(address=cluster.address, log_to_driver=False, namespace="bench-ray")

    @ray.remote(num_cpus=0.001)
    def noop() -> None:
        return None

    @ray.remote(num_cpus=0)
    class Job:
        def progress(self, offset: int) -> bytes:
            return b""

    ray.get([noop.remote() for _ in range(50)])  # workers started before timing
    cpu0, started = time.process_time(), time.perf_counter()
    ray.get([noop.remote() for _ in range(count)])
    tasks_wall, tasks_cpu = time.perf_counter() - started, time.process_time() - cpu0
    actor = Job.remote()
    ray.get(actor.progress.remote(0))
    cpu0, started = time.process_time(), time.perf_counter()
    ray.get([actor.progress.remote(n) for n in range(count)])
    calls_wall, calls_cpu = time.perf_counter() - started, time.process_time() - cpu0
    ray.kill(actor)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ray.shutdown()
    return {"tasks_wall": tasks_wall, "tasks_cpu": tasks_cpu, "calls_wall": calls_wall, "calls_cpu": calls_cpu,
            "rss_mb": rss_mb}


def store_writes(count: int, home: Path) -> float:
    """Single-row metadata writes per second (step events, one transaction each) on SQLite."""
    from forgeline.store.metadata.records import StepEventDraft, StepEventKind
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    store = SqlMetadataStore(f"sqlite:///{home / 'bench.db'}")
    pipeline = Pipeline(name="bench-ray-store", steps=[ProcessingStep(name="S", code="s.py")], check_files=False)
    version = store.save_pipeline_version(pipeline.name, pipeline.to_request())
    store.create_execution(execution_id="bench", pipeline_name=pipeline.name, pipeline_version=version.version,
                           parameters={}, work_dir=str(home), steps=[("S", "Processing")])
    started = time.perf_counter()
    for n in range(count):
        store.append_events([StepEventDraft("bench", StepEventKind.STEP, "S", 1, status="Executing",
                                            payload={"n": n})])
    seconds = time.perf_counter() - started
    store.close()
    return count / seconds


@contextlib.contextmanager
def s3_server() -> Iterator[dict[str, str]]:
    """moto's S3 server in this process, a bucket, and the settings that reach it."""
    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                 region_name="us-east-1").create_bucket(Bucket="bench-ray")
    options = {"s3": {"endpoint_url": endpoint, "key": "testing", "secret": "testing"}}
    try:
        yield {"FORGELINE_ARTIFACT_ROOT": "s3://bench-ray/forgeline", "FORGELINE_STORAGE_OPTIONS": json.dumps(options)}
    finally:
        server.stop()


def measure(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    noop = work / "noop.py"
    noop.write_text("pass\n")
    sleeper = work / "sleep.py"
    sleeper.write_text("import time\ntime.sleep(1)\n")
    figures: dict[str, Any] = {"chains": {}, "cores": os.cpu_count()}
    os.environ.update(RAY_ENV)
    cluster = start_cluster()
    try:
        with s3_server() as s3:
            ray_env = {**s3, "FORGELINE_EXECUTOR": f"ray://{cluster.address}"}
            for length in args.chains:
                with settings({"FORGELINE_EXECUTOR": "local"}):
                    local = run(chain(length, noop), args.timeout)[0] / length
                with settings(ray_env):
                    on_ray = run(chain(length, noop), args.timeout)[0] / length
                figures["chains"][length] = (local, on_ray)
                print(f"chain of {length}: {local:.2f} s/step local, {on_ray:.2f} s/step on Ray", flush=True)
            if args.fan_out:
                with settings(ray_env):
                    figures["fan_out"] = (args.fan_out, run(fan_out(args.fan_out, sleeper), args.timeout)[0])
                print(f"fan-out of {args.fan_out}: {figures['fan_out'][1]:.1f} s", flush=True)
            if args.rows:
                data, model = split_data(args.rows, Path(tempfile.gettempdir()) / "forgeline-bench-transform")
                idle_mb = PeakMemory(cluster).total_mb()
                with settings({"FORGELINE_EXECUTOR": "local"}), PeakMemory(cluster) as local_memory:
                    local_step = run(transform(data, model), args.timeout)[1]["Predict"]
                with settings(ray_env), PeakMemory(cluster) as ray_memory:
                    ray_step = run(transform(data, model), args.timeout)[1]["Predict"]
                size_mb = sum(part.stat().st_size for part in data.iterdir()) / 1024 / 1024
                figures["transform"] = (args.rows, local_step, ray_step)
                figures["transform_memory"] = (size_mb, idle_mb, local_memory.peak_mb, ray_memory.peak_mb)
                print(f"transform of {args.rows:,} rows ({size_mb:.0f} MB): {local_step:.1f} s local (peak "
                      f"{local_memory.peak_mb:.0f} MB), {ray_step:.1f} s on Ray (peak {ray_memory.peak_mb:.0f} MB)",
                      flush=True)
        figures["concurrent"] = concurrent_tasks(cluster, args.tasks)
        figures["store_writes"] = store_writes(2 * args.tasks, work)
        print(f"{args.tasks} tasks: {figures['concurrent']}; {figures['store_writes']:.0f} writes/s", flush=True)
    finally:
        cluster.stop()
    return figures


def section(figures: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [BEGIN, "",
             f"Measured {datetime.now(UTC):%Y-%m-%d} with forgeline {forgeline.__version__} on {platform.machine()}, "
             f"{figures['cores']} cores shared with other work; Ray cluster: a head and a second node on this "
             "machine, one CPU each; Ray runs with artifacts on moto's S3 server in the benchmark's process.", "",
             "| Measurement | Local executor | Ray executor |", "|---|---|---|"]
    for length, (local, on_ray) in figures["chains"].items():
        lines.append(f"| chain of {length} no-op steps, per step | {local:.2f} s | {on_ray:.2f} s |")
    if "fan_out" in figures:
        width, wall = figures["fan_out"]
        lines.append(f"| fan-out of {width} one-second steps, wall (cores' bound: {width / 2:.0f} s) | – | "
                     f"{wall:.1f} s |")
    if "transform" in figures:
        rows, local, on_ray = figures["transform"]
        lines.append(f"| batch transform of {rows:,} rows, instance_count=2, step duration | {local:.1f} s "
                     f"({rows / local:,.0f} rows/s) | {on_ray:.1f} s ({rows / on_ray:,.0f} rows/s) |")
        size, idle, local_peak, ray_peak = figures["transform_memory"]
        lines.append(f"| the same: peak resident memory of the benchmark, the cluster and the job servers (input "
                     f"{size:,.0f} MB; {idle:,.0f} MB before it) | {local_peak:,.0f} MB | {ray_peak:,.0f} MB |")
    c = figures["concurrent"]
    lines += ["", f"{args.tasks} concurrent no-op Ray tasks from one driver: {c['tasks_wall']:.2f} s wall, "
              f"{c['tasks_cpu']:.2f} s of the driver's CPU ({1000 * c['tasks_cpu'] / args.tasks:.2f} ms per task); "
              f"{args.tasks} progress calls to one actor: {c['calls_wall']:.2f} s, "
              f"{1000 * c['calls_cpu'] / args.tasks:.2f} ms of driver CPU per call; driver peak memory "
              f"{c['rss_mb']:.0f} MB. Metadata store (SQLite, one transaction per write): "
              f"{figures['store_writes']:.0f} writes/s.", "", *projection(figures, args), "", END]
    return "\n".join(lines)


def projection(figures: dict[str, Any], args: argparse.Namespace, steps: int = 1000, nodes: int = 100,
               step_seconds: float = 60.0) -> list[str]:
    """On paper, from the figures above: what 1,000 concurrent steps on 100 nodes ask of the orchestrator."""
    c = figures["concurrent"]
    polls = steps / POLL_SECONDS
    poll_cores = polls * c["calls_cpu"] / args.tasks
    transitions = 2 * steps / step_seconds
    return [
        f"On paper, {steps:,} concurrent steps across {nodes} nodes, each a {step_seconds:.0f}-second job: the "
        f"orchestrator polls every running job every {POLL_SECONDS} s, {polls:,.0f} actor calls per second, "
        f"≈ {poll_cores:.1f} core(s) of driver CPU at the measured cost per call (one thread per running job: "
        f"{steps:,} threads, mostly waiting); starting them costs {c['tasks_cpu'] / args.tasks * 1000:.2f} ms of "
        f"driver CPU per job on top of Ray's worker start on the node. The store sees ≈ {transitions:.0f} step "
        f"transitions per second (a start and an end per step, each one transaction with its events), "
        f"{transitions / figures['store_writes'] * 100:.0f} % of the SQLite write rate measured here; PostgreSQL "
        "takes concurrent writers, SQLite serialises them. What does not scale as is: one progress thread per job "
        "(a single loop calling ray.wait over all progress calls would do). A job's start is no process start: jobs "
        "of the default resources go to warm job hosts, which run one job after another (the chains above); only "
        "jobs that ask for resources of their own, and shards, still start a worker each.",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chains", type=lambda text: [int(n) for n in text.split(",") if n], default=[10, 50])
    parser.add_argument("--fan-out", type=int, default=100)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-ray-work-") as work:
        figures = measure(args, Path(work))
    text = section(figures, args)
    print(text)
    if not args.no_readme:
        write_section(text, BEGIN, END, HEADING)
    return 0


if __name__ == "__main__":
    sys.exit(main())
