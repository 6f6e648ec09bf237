"""Real-time serving: server CPU per request, open-loop success and latency percentiles, start-up time and memory.

One model for every server: a HistGradientBoostingClassifier on 34 features extracted from nested JSON payment
orders (``serving_model.py``). Side by side, on the same order bodies, one server at a time on this machine:

- **forgeline**: the model registered (Approved, ``accepts_batches``) in a temporary ``FORGELINE_HOME``, an
  endpoint following ``fraud@approved``, and ``forgeline serve`` with ``--workers`` workers.
- **FastAPI**: the hand-written baseline (``serving_baseline.py``): an ``async def`` handler calling the same
  predictor, under uvicorn with uvloop and httptools, access log off, ``--workers`` workers.
- **MLflow**: ``mlflow models serve --env-manager local -w <workers>`` on the same classifier as a pyfunc model
  (``serving_mlflow.py``), from its own virtual environment (created once under the temp folder); its scoring
  protocol needs the order wrapped as ``{"dataframe_records": [order]}``.

Each server is started, timed until its first successful answer (start-up), warmed for 2 s, then loaded open loop
(``forgeline.serving.loadtest``: requests on a fixed schedule, latency from the scheduled send) at each rate for
``--duration`` seconds (env ``FORGELINE_BENCH_SERVING_SECONDS``, default 30). CPU per request is user + system
time of the server's whole process tree (psutil, reaped children included) over the answered requests; RSS is
read per process at the end. A server that answers under half of a rate's requests is not run at higher rates.

    python benchmarks/bench_serving.py [--duration 30] [--rates 200,400,1000,2000,3000] [--workers 2]
                                       [--servers forgeline,fastapi,mlflow] [--no-readme]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import serving_model
from bench_transform import CORES, busy_cpu_seconds
from serving_report import generator_line, section, tables, write_readme

from forgeline.config import Settings
from forgeline.registry import Registry
from forgeline.serving.loadtest import LoadTest, RateResult
from forgeline.store.metadata.records import ModelApprovalStatus, ModelPackageDraft

HERE = Path(__file__).resolve().parent
DURATION_ENV = "FORGELINE_BENCH_SERVING_SECONDS"
RATES = (200, 400, 1000, 2000, 3000)
COLLAPSED = 50.0  # ok % under which higher rates are not tried
START_TIMEOUT = 180.0
MLFLOW_ENV = Path(tempfile.gettempdir()) / "forgeline-bench-mlflow"
# one native thread per worker process for the baselines (forgeline's workers set their own): an OpenMP pool per
# process on shared cores makes a one-row HistGradientBoosting predict spin for milliseconds to seconds
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


class BenchmarkError(Exception):
    """A server could not be set up or started, so its figures would mean nothing."""


@dataclass(frozen=True)
class Server:
    """How to start one server and where it answers."""

    name: str
    command: list[str]
    env: dict[str, str]
    port: int
    path: str  # invocation path
    wrap: Callable[[bytes], bytes] = lambda body: body
    cwd: Path = HERE


@dataclass
class Row:
    """One rate against one server."""

    result: RateResult
    cpu_us: float | None  # server CPU per answered request
    foreign: float  # share of the cores others used meanwhile


@dataclass
class Measured:
    """Everything measured of one server."""

    name: str
    startup: float | None = None
    answer: str = ""  # the first answer's body: every server must give the same probability
    rows: list[Row] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)  # per process of the tree, root first
    failure: str | None = None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_cpu(pid: int) -> float:
    """User + system seconds of a process tree, including its reaped children."""
    total = 0.0
    for process in tree(pid):
        try:
            times = process.cpu_times()
            total += times.user + times.system + times.children_user + times.children_system
        except psutil.NoSuchProcess:
            pass
    return total


def forgeline_server(workspace: Path, model_dir: Path, code_dir: Path, workers: int, port: int) -> Server:
    """Register the model in a fresh home, create the endpoint, and return how to serve it."""
    home = workspace / "forgeline-home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'forgeline.db'}",
                        artifact_root=str(home / "artifacts"))
    registry = Registry(settings)
    code_uri = registry.artifacts.uri("model-packages", "fraud", "bench", "code")
    shutil.copytree(code_dir, code_uri)
    registry.store.create_model_package(ModelPackageDraft(
        group="fraud", approval_status=ModelApprovalStatus.APPROVED, model_data=str(model_dir), code_uri=code_uri,
        entry_point="inference.py", content_types=["application/json"], response_types=["application/json"],
        accepts_batches=True), actor="bench")
    env = {**os.environ, **settings.to_env()}
    cli = [sys.executable, "-m", "forgeline.cli.main"]
    created = subprocess.run([*cli, "endpoints", "create", "fraud", "--model", "fraud@approved"], env=env,
                             capture_output=True, text=True)
    if created.returncode != 0:
        raise BenchmarkError(f"forgeline endpoints create failed: {created.stderr.strip()}")
    return Server("forgeline", [*cli, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers-min",
                                str(workers), "--workers-max", str(workers)], env, port, "/endpoints/fraud/invocations")


def fastapi_server(model_dir: Path, code_dir: Path, workers: int, port: int) -> Server:
    env = {**os.environ, **ONE_THREAD, "BENCH_SERVING_MODEL": str(model_dir), "BENCH_SERVING_CODE": str(code_dir)}
    command = [sys.executable, "-m", "uvicorn", "serving_baseline:app", "--host", "127.0.0.1", "--port", str(port),
               "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    return Server("FastAPI", command + (["--workers", str(workers)] if workers > 1 else []), env, port, "/invocations")


def mlflow_environment() -> Path:
    """The MLflow virtual environment, created once with this environment's scikit-learn, NumPy and joblib."""
    python = MLFLOW_ENV / "bin" / "python"
    if not (MLFLOW_ENV / "bin" / "mlflow").exists():
        import joblib
        import numpy
        import sklearn

        print(f"installing MLflow into {MLFLOW_ENV} (once) ...", file=sys.stderr, flush=True)
        steps = [[sys.executable, "-m", "venv", "--clear", str(MLFLOW_ENV)],
                 [str(python), "-m", "pip", "install", "-q", "mlflow", f"scikit-learn=={sklearn.__version__}",
                  f"numpy=={numpy.__version__}", f"joblib=={joblib.__version__}"]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=1800)
            if done.returncode != 0:
                raise BenchmarkError(f"could not install MLflow: {done.stderr.strip().splitlines()[-1:]}")
    return python


def mlflow_server(workspace: Path, model_dir: Path, workers: int, port: int) -> Server:
    python = mlflow_environment()
    destination = workspace / "mlflow-model"
    shutil.rmtree(destination, ignore_errors=True)
    built = subprocess.run([str(python), str(HERE / "serving_mlflow.py"), str(model_dir / "model.joblib"),
                            str(destination)], capture_output=True, text=True, cwd=HERE)
    if built.returncode != 0:
        raise BenchmarkError(f"could not build the MLflow model: {built.stderr.strip()[-500:]}")
    env = {**os.environ, **ONE_THREAD, "MLFLOW_TRACKING_URI": (workspace / "mlruns").as_uri(),
           "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # it runs its own uvicorn
    command = [str(python.with_name("mlflow")), "models", "serve", "-m", str(destination), "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port), "-w", str(workers)]
    return Server("MLflow", command, env, port, "/invocations",
                  wrap=lambda body: json.dumps({"dataframe_records": [json.loads(body)]}).encode())


def first_answer(server: Server, payload: bytes) -> str | None:
    """The body of a 200 answer to ``payload``, or None while the server cannot answer yet."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", server.path, payload, {"Content-Type": "application/json"})
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
        return text if response.status == 200 else None
    except OSError:
        return None
    finally:
        connection.close()


@contextmanager
def running(server: Server, payload: bytes, log: Path) -> Iterator[tuple[int, float, str]]:
    """Start ``server``; yield its pid, the seconds until its first successful answer and that answer."""
    with log.open("wb") as output:
        started = time.monotonic()
        process = subprocess.Popen(server.command, env=server.env, cwd=server.cwd, stdout=output, stderr=output,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            while (answer := first_answer(server, payload)) is None:
                if process.poll() is not None:
                    last = (log.read_text(errors="replace").strip().splitlines() or ["no output"])[-1]
                    raise BenchmarkError(f"{server.name} exited with {process.returncode}: {last[-300:]}")
                if time.monotonic() - started > START_TIMEOUT:
                    raise BenchmarkError(f"{server.name} did not answer within {START_TIMEOUT:.0f} s")
                time.sleep(0.02)
            yield process.pid, time.monotonic() - started, answer
        finally:
            with_group(process, signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                with_group(process, signal.SIGKILL)
                process.wait(15)


def with_group(process: subprocess.Popen[bytes], signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


def measure(server: Server, body: bytes, rates: list[float], duration: float, workspace: Path) -> Measured:
    """Start, warm, load at each rate, read memory, stop."""
    measured = Measured(server.name)
    url = f"http://127.0.0.1:{server.port}{server.path}"
    payload = server.wrap(body)
    with running(server, payload, workspace / f"{server.name}.log") as (pid, startup, answer):
        measured.startup, measured.answer = startup, answer.strip()
        LoadTest(url, payload).run(200, 2.0)  # warm-up, not recorded
        for rate in rates:
            print(f"  {server.name} at {rate:g} rps for {duration:g} s ...", file=sys.stderr, flush=True)
            cpu, busy, own = tree_cpu(pid), busy_cpu_seconds(), time.process_time()
            wall = time.monotonic()
            result = LoadTest(url, payload).run(rate, duration)
            cpu = tree_cpu(pid) - cpu
            foreign = (busy_cpu_seconds() - busy) - cpu - (time.process_time() - own)
            answered = result.ok + sum(count for kind, count in result.errors.items() if kind.isdigit())
            measured.rows.append(Row(result, cpu / answered * 1e6 if answered else None,
                                     max(0.0, foreign / ((time.monotonic() - wall) * CORES))))
            if result.ok_percent < COLLAPSED:
                break
            time.sleep(2.0)  # let a backlog drain before the next rate
        measured.rss_mb = [p.memory_info().rss / 2**20 for p in tree(pid) if p.is_running()]
    return measured


TRIVIAL_SERVER = """
import asyncio, sys
ANSWER = b"HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: application/json\\r\\n\\r\\n{}"
class Answer(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, b""
    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\\r\\n\\r\\n")) >= 0:
            head = self.buffer[:end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15:].split(b"\\r\\n")[0]) if at >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.transport.write(ANSWER)
async def main():
    server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""


def measure_generator(body: bytes, rate: float, duration: float) -> tuple[RateResult, float]:
    """The load generator alone against a server that answers ``{}`` at once: its result and CPU µs / request."""
    port = free_port()
    server = Server("trivial", [sys.executable, "-c", TRIVIAL_SERVER, str(port)], dict(os.environ), port, "/")
    with running(server, body, Path(tempfile.gettempdir()) / "forgeline-bench-trivial.log"):
        own = time.process_time()
        result = LoadTest(f"http://127.0.0.1:{port}/", body).run(rate, duration)
        return result, (time.process_time() - own) / result.sent * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=float(os.environ.get(DURATION_ENV) or 30.0),
                        help=f"seconds per rate (default: ${DURATION_ENV} or 30)")
    parser.add_argument("--rates", default=",".join(map(str, RATES)))
    parser.add_argument("--workers", type=int, default=CORES, help="worker processes of every server")
    parser.add_argument("--servers", default="forgeline,fastapi,mlflow")
    parser.add_argument("--no-readme", action="store_true", help="print the tables only")
    args = parser.parse_args(argv)
    rates = [float(rate) for rate in args.rates.split(",")]
    wanted = [name.strip().lower() for name in args.servers.split(",")]
    body = json.dumps(serving_model.make_order(random.Random(11), 1)).encode()
    results: list[Measured] = []
    generator = measure_generator(body, max(rates), args.duration)
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-serving-") as folder:
        workspace = Path(folder)
        print("training the model ...", file=sys.stderr, flush=True)
        model_dir, code_dir = serving_model.write_package(workspace / "package", serving_model.train())
        builders: dict[str, Callable[[int], Server]] = {
            "forgeline": lambda port: forgeline_server(workspace, model_dir, code_dir, args.workers, port),
            "fastapi": lambda port: fastapi_server(model_dir, code_dir, args.workers, port),
            "mlflow": lambda port: mlflow_server(workspace, model_dir, args.workers, port),
        }
        for name in wanted:
            print(f"{name}:", file=sys.stderr, flush=True)
            try:
                results.append(measure(builders[name](free_port()), body, rates, args.duration, workspace))
            except BenchmarkError as exc:
                print(f"  {exc}", file=sys.stderr, flush=True)
                results.append(Measured(name, failure=str(exc)))
    print(tables(results))
    print(generator_line(*generator))
    if not args.no_readme:
        write_readme(section(results, rates, args.duration, args.workers, len(body), generator))
        print("\nfigures written to benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
