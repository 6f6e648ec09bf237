"""The REST API under load: p50/p99 latency of list executions (10,000 stored), describe and start.

A real ``forgeline server`` (authentication on, its queue launcher running) over a temporary FORGELINE_HOME
whose SQLite store holds ``--executions`` finished executions of a one-step pipeline (made with the store's own
create_execution, then marked Succeeded in one UPDATE). ``--clients`` concurrent clients (asyncio + httpx, one
connection each, keep-alive) send ``--requests`` requests per scenario, closed loop; a request's latency is from
its send to the end of its answer. Scenarios, one after the other:

- list: ``GET /api/v1/executions?limit=50`` (the newest page), and every third request the next page by cursor;
- describe: ``GET /api/v1/executions/{id}`` of a random stored execution (record, steps, attempts);
- start: ``POST /api/v1/executions`` of the stored pipeline (parameters checked, a Queued execution recorded;
  the launcher runs them one at a time meanwhile, FORGELINE_MAX_CONCURRENT_EXECUTIONS=1).

    python benchmarks/bench_api.py [--executions 10000] [--clients 50] [--requests 2000] [--no-readme]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx
from readme_section import write_section

BEGIN, END = "<!-- bench_api:begin -->", "<!-- bench_api:end -->"
HEADING = "## REST API under load (`bench_api.py`)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def forgeline(env: dict[str, str], *args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-m", "forgeline.cli.main", *args], env=env, cwd=cwd, check=True,
                          capture_output=True, text=True)
    return done.stdout


def seed(env: dict[str, str], project: Path, count: int) -> list[str]:
    """Store the pipeline with its code (as `run` does) and ``count`` finished executions of it."""
    os.environ.update(env)
    os.chdir(project)
    from sqlalchemy import update

    from forgeline.config import Settings
    from forgeline.engine.loader import load_pipeline
    from forgeline.engine.runtime import Runtime
    from forgeline.engine.stored import store_pipeline
    from forgeline.store.metadata.tables import executions

    runtime = Runtime.build(Settings.from_env())
    stored = store_pipeline(runtime, load_pipeline("pipeline.py"), str(project))
    store = runtime.store
    ids = []
    for number in range(count):
        execution_id = f"{number:08d}" + os.urandom(12).hex()
        store.create_execution(execution_id=execution_id, pipeline_name=stored.name,
                               pipeline_version=stored.version, parameters={"Rows": number}, work_dir=str(project),
                               steps=[("Prepare", "Processing")], code_snapshot=stored.code_snapshot)
        ids.append(execution_id)
    with store._engine.begin() as connection:  # noqa: SLF001 - setup only: finish them all at once
        connection.execute(update(executions).values(status="Succeeded"))
    store.close()
    return ids


async def scenario(name: str, base: str, token: str, clients: int, requests: int, ids: list[str]) -> list[float]:
    """Latencies (seconds) of ``requests`` requests of one scenario from ``clients`` concurrent clients."""
    latencies: list[float] = []
    failures: list[str] = []
    per_client = requests // clients

    async def client_loop(number: int) -> None:
        rng = random.Random(number)
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"},
                                     timeout=120) as client:
            cursor = None
            for index in range(per_client):
                started = time.perf_counter()
                if name == "list":
                    params = {"limit": 50, **({"cursor": cursor} if cursor and index % 3 else {})}
                    response = await client.get("/executions", params=params)
                    cursor = response.json().get("next_cursor") if response.status_code == 200 else None
                elif name == "describe":
                    response = await client.get(f"/executions/{rng.choice(ids)}")
                else:
                    response = await client.post("/executions", json={"pipeline": "bench",
                                                                      "parameters": {"Rows": "7"}})
                latencies.append(time.perf_counter() - started)
                if response.status_code >= 300:
                    failures.append(f"{response.status_code} {response.text[:200]}")

    await asyncio.gather(*(client_loop(n) for n in range(clients)))
    if failures:
        raise SystemExit(f"{name}: {len(failures)} failed requests, e.g. {failures[0]}")
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-api-") as folder:
        root = Path(folder)
        project = root / "project"
        project.mkdir()
        (project / "prepare.py").write_text("print('prepared')\n")
        (project / "pipeline.py").write_text(textwrap.dedent("""
            from forgeline.workflow import ParameterInteger, Pipeline, ProcessingStep

            rows = ParameterInteger("Rows", default_value=10)
            prepare = ProcessingStep(name="Prepare", code="prepare.py", arguments=[rows])
            pipeline = Pipeline(name="bench", parameters=[rows], steps=[prepare])
        """))
        env = {**os.environ, "FORGELINE_HOME": str(root / "home"), "FORGELINE_MAX_CONCURRENT_EXECUTIONS": "1"}
        env.pop("FORGELINE_DATABASE_URL", None)
        env.pop("FORGELINE_ARTIFACT_ROOT", None)
        load = os.getloadavg()[0]  # other work on the machine inflates every figure: say how much there was
        began = time.monotonic()
        ids = seed(env, project, args.executions)
        print(f"seeded {len(ids):,} executions in {time.monotonic() - began:.1f} s", flush=True)
        token = forgeline(env, "tokens", "create", "bench", "--role", "operator", cwd=project).strip().splitlines()[-1]
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "server", "--port", str(port)],
                                  env=env, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not start") from None
                time.sleep(0.1)
            rows = []
            for name in ("list", "describe", "start"):
                began = time.monotonic()
                latencies = asyncio.run(scenario(name, base, token, args.clients, args.requests, ids))
                took = time.monotonic() - began
                row = (name, len(latencies), statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000,
                       len(latencies) / took)
                rows.append(row)
                print(f"{name:9s} {row[1]:6d} requests  p50 {row[2]:8.1f} ms  p99 {row[3]:8.1f} ms  {row[4]:7.1f}/s",
                      flush=True)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    if args.no_readme:
        return
    table = ["| scenario | requests | p50 | p99 | requests/s |", "|---|---:|---:|---:|---:|"]
    table += [f"| {name} | {count:,} | {p50:.1f} ms | {p99:.1f} ms | {rate:.0f} |"
              for name, count, p50, p99, rate in rows]
    block = "\n".join([
        BEGIN,
        f"{args.executions:,} executions stored (SQLite), {args.clients} concurrent clients, one `forgeline server` "
        f"process (uvicorn, one worker, tokens checked on every request), {os.cpu_count()} cores shared with the "
        f"clients; 1-minute load average {load:.1f} when the run began. `python benchmarks/bench_api.py`",
        "",
        *table,
        END,
    ])
    write_section(block, BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
