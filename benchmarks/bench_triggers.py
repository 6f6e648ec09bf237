"""File triggers: how long from a file written to its execution started, and how long a thousand files take.

A real `forgeline server --no-auth` runs on 127.0.0.1 over a fresh temporary FORGELINE_HOME; triggers are
made with `forgeline triggers create` on a one-step pipeline, as a user would.

1. Latency, local folder: a trigger file is written (whole, then renamed into the folder) every so often;
   latency = the execution's created_at (recorded Queued by the trigger watcher) minus the moment the file
   was renamed into place, and to its started_at (the queue launcher's orchestrator took it).
2. Latency, S3: the same against moto's S3 server on 127.0.0.1 (put_object, then the same two figures).
3. A thousand files at once: 1,000 trigger files renamed into a watched folder in one go; the time until
   the last of their 1,000 executions is recorded (Queued, each exactly once).

The poll interval is a trigger setting (`--poll-seconds`, default 5 s): latency is about half of it plus the
work. Prints a table and rewrites the triggers section of benchmarks/README.md (between its own markers).

    python benchmarks/bench_triggers.py [--files 10] [--poll-seconds 0.5] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from readme_section import write_section
from sqlalchemy import create_engine, func, select

import forgeline
from forgeline.store.metadata.records import ExecutionRecord
from forgeline.store.metadata.sql_store import SqlMetadataStore
from forgeline.store.metadata.tables import executions

BEGIN = "<!-- triggers:begin (written by bench_triggers.py) -->"
END = "<!-- triggers:end -->"
HEADING = """## File triggers (`bench_triggers.py`)

A real `forgeline server` over a fresh `FORGELINE_HOME`, triggers made with `forgeline triggers create` on a
one-step pipeline. **Latency** runs from the moment a trigger file is in place (renamed into the local folder,
or `put_object` answered by moto's S3 server on 127.0.0.1) to the execution's `created_at` (recorded, Queued,
by the trigger watcher) and to its `started_at` (its orchestrator running, launched by the queue launcher).
About half a poll interval of it is waiting for the next look (`--poll-seconds`). **A thousand files**: 1,000
files renamed into a watched folder at once, timed until the last of their executions is recorded."""

PIPELINE = """
from forgeline.workflow import ExecutionVariables, ParameterString, Pipeline, ProcessingStep

model = ParameterString("ModelType", default_value="hgb")
pipeline = Pipeline(name="bench-trigger", parameters=[model], steps=[
    ProcessingStep(name="Noop", code="noop.py", arguments=[model, ExecutionVariables.TRIGGER_URI])])
"""
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
          "AWS_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"timed out after {timeout} s waiting for {what}")


@contextmanager
def moto_server() -> Iterator[str]:
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


class Bench:
    """A temporary FORGELINE_HOME and project, the CLI, and one running server."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.project = root / "project"
        self.project.mkdir()
        (self.project / "pipeline.py").write_text(PIPELINE)
        (self.project / "noop.py").write_text("")
        self.env = {**os.environ, **env, "FORGELINE_HOME": str(root / "home")}
        self.server: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "forgeline.cli.main", *args], cwd=self.project, env=self.env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"forgeline {' '.join(args)} failed:\n{done.stderr}")

    def start_server(self) -> None:
        port = free_port()
        log = open(self.root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
        self.server = subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "server", "--no-auth",
                                        "--host", "127.0.0.1", "--port", str(port)], cwd=self.project,
                                       env=self.env, stdout=log, stderr=subprocess.STDOUT)
        import httpx

        def ready() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(ready, 180, "the server")

    def stop(self) -> None:
        if self.server is not None and self.server.poll() is None:
            self.server.send_signal(signal.SIGTERM)
            self.server.wait(60)

    def store(self) -> SqlMetadataStore:
        return SqlMetadataStore(f"sqlite:///{self.root / 'home' / 'forgeline.db'}")


def by_uri(store: SqlMetadataStore) -> dict[str, ExecutionRecord]:
    return {str((record.started_by or {}).get("uri")): record
            for record in store.list_executions("bench-trigger", limit=100_000)}


def latencies(bench: Bench, drop: Callable[[int], tuple[str, datetime]], files: int,
              gap: float) -> tuple[list[float], list[float]]:
    """Seconds from each file in place to its execution recorded, and to its execution started."""
    store = bench.store()
    recorded, started = [], []
    for index in range(files):
        uri, placed = drop(index)
        record = wait_for(lambda uri=uri: (r := by_uri(store).get(uri)) is not None and r.started_at is not None
                          and r, 120, f"the execution of {uri}")
        recorded.append((record.created_at - placed).total_seconds())
        started.append((record.started_at - placed).total_seconds())
        time.sleep(gap)  # let the queue drain so each file meets an idle server
    store.close()
    return recorded, started


def local_drop(folder: Path) -> Callable[[int], tuple[str, datetime]]:
    def drop(index: int) -> tuple[str, datetime]:
        staged = folder.parent / f"staged-{index}.json"
        staged.write_text(json.dumps({"pipeline_parameters": {"ModelType": f"m{index}"}}))
        target = folder / f"{index:04d}.json"
        os.replace(staged, target)
        return str(target), datetime.now(UTC)
    return drop


def s3_drop(endpoint: str, bucket: str) -> Callable[[int], tuple[str, datetime]]:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)

    def drop(index: int) -> tuple[str, datetime]:
        key = f"exports/training/{index:04d}.json"
        client.put_object(Bucket=bucket, Key=key,
                          Body=json.dumps({"pipeline_parameters": {"ModelType": f"m{index}"}}).encode())
        return f"s3://{bucket}/{key}", datetime.now(UTC)
    return drop


def thousand(bench: Bench, folder: Path, count: int) -> float:
    """Seconds from 1,000 files renamed into ``folder`` to the last of their executions recorded."""
    staging = folder.parent / "staging"
    staging.mkdir()
    for index in range(count):
        (staging / f"{index:04d}.json").write_text(json.dumps({"pipeline_parameters": {"ModelType": f"t{index}"}}))
    store = bench.store()
    before = len(by_uri(store))
    engine = create_engine(f"sqlite:///{bench.root / 'home' / 'forgeline.db'}")
    query = select(func.count()).select_from(executions).where(executions.c.pipeline_name == "bench-trigger")
    placed = datetime.now(UTC)
    for index in range(count):
        os.replace(staging / f"{index:04d}.json", folder / f"{index:04d}.json")
    prefix = str(folder)

    def all_recorded() -> bool:  # one cheap count: the benchmark must not take the CPU it measures
        with engine.connect() as connection:
            return int(connection.execute(query).scalar_one()) >= before + count

    wait_for(all_recorded, 600, f"{count} executions", interval=0.2)
    engine.dispose()
    records = [r for uri, r in by_uri(store).items() if uri.startswith(prefix)]
    uris = [str((r.started_by or {}).get("uri")) for r in records]
    if len(set(uris)) != count or len(uris) != count:
        raise SystemExit(f"expected {count} executions, one per file; got {len(uris)} for {len(set(uris))} files")
    store.close()
    return (max(r.created_at for r in records) - placed).total_seconds()


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(values) * 1000:.0f} ms (p90 {p90 * 1000:.0f} ms)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=10, help="trigger files per latency measurement")
    parser.add_argument("--poll-seconds", type=float, default=0.5, help="the triggers' poll interval")
    parser.add_argument("--many", type=int, default=1000, help="files dropped at once")
    parser.add_argument("--no-readme", action="store_true", help="print only; leave benchmarks/README.md as is")
    args = parser.parse_args()
    rows: list[tuple[str, str]] = []
    root = Path(tempfile.mkdtemp(prefix="forgeline-bench-triggers-"))
    try:
        with moto_server() as endpoint:
            import boto3

            env = {**S3_ENV, "NO_PROXY": "127.0.0.1", "FORGELINE_MAX_CONCURRENT_EXECUTIONS": "2",
                   "FORGELINE_STORAGE_OPTIONS": json.dumps({"s3": {"endpoint_url": endpoint}})}
            os.environ.update({key: value for key, value in S3_ENV.items()})
            bucket = "bench-exports"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            bench = Bench(root, env)
            inbox, many = bench.project / "inbox", bench.project / "many"
            inbox.mkdir()
            many.mkdir()
            poll = f"{args.poll_seconds:g}"
            bench.cli("triggers", "create", "local", "--pipeline", "pipeline.py", "--watch", str(inbox),
                      "--pattern", "*.json", "--poll-seconds", poll)
            bench.cli("triggers", "create", "s3", "--pipeline", "pipeline.py", "--watch",
                      f"s3://{bucket}/exports/training/", "--pattern", "*.json", "--poll-seconds", poll)
            bench.start_server()
            try:
                recorded, started = latencies(bench, local_drop(inbox), args.files, args.poll_seconds)
                rows += [(f"Local folder → execution recorded (poll {poll} s)", summary(recorded)),
                         (f"Local folder → execution started (poll {poll} s)", summary(started))]
                recorded, started = latencies(bench, s3_drop(endpoint, bucket), args.files, args.poll_seconds)
                rows += [(f"S3 (moto) → execution recorded (poll {poll} s)", summary(recorded)),
                         (f"S3 (moto) → execution started (poll {poll} s)", summary(started))]
                bench.cli("triggers", "pause", "local")
                bench.cli("triggers", "pause", "s3")
                bench.cli("triggers", "create", "many", "--pipeline", "pipeline.py", "--watch", str(many),
                          "--pattern", "*.json", "--poll-seconds", poll)
                seconds = thousand(bench, many, args.many)
                rows.append((f"{args.many:,} files at once → all {args.many:,} executions recorded",
                             f"{seconds:.1f} s ({args.many / seconds:.0f} files/s)"))
            finally:
                bench.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    header = (f"Measured {datetime.now(UTC):%Y-%m-%d} with forgeline {forgeline.__version__}, Python "
              f"{platform.python_version()}, {platform.system()} {platform.machine()}, {os.cpu_count()} cores; "
              f"{args.files} files per latency row (one at a time), SQLite store, max 2 concurrent executions.")
    table = ["| Measurement | Median |", "|---|---:|", *(f"| {name} | {value} |" for name, value in rows)]
    block = "\n".join([BEGIN, header, "", *table, END])
    print(block)
    if not args.no_readme:
        write_section(block, BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
