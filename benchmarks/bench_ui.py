"""The web UI: time to first render of an execution page with 200 steps and of the executions list with 10,000
executions stored, and the bytes each page ships, measured in Debian's chromium driven by Playwright.

A real ``forgeline server --no-auth`` (loopback) over a temporary FORGELINE_HOME whose SQLite store holds a
200-step pipeline (20 layers of 10 processing steps, each depending on two of the layer above) with one execution
of it, and ``--executions`` finished executions of a one-step pipeline (made with the store's own create_execution,
then marked Succeeded in one UPDATE). Each measurement opens the page in a fresh browser context (empty cache) and
times from navigation start to the moment the page's content is in the DOM: every one of the 200 DAG nodes
coloured, or the first page (50 rows) of the executions list. Bytes: the bodies of every response the page
loaded (HTML, JS, CSS, API JSON), uncompressed.

    python benchmarks/bench_ui.py [--executions 10000] [--repeats 5] [--no-readme]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from readme_section import write_section

BEGIN, END = "<!-- bench_ui:begin -->", "<!-- bench_ui:end -->"
HEADING = "## Web UI (`bench_ui.py`)"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
LAYERS, WIDTH = 20, 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wide_pipeline() -> str:
    """A pipeline file of LAYERS x WIDTH processing steps, each depending on two steps of the layer above."""
    lines = ["from forgeline.workflow import Pipeline, ProcessingStep", "steps = []"]
    for layer in range(LAYERS):
        for column in range(WIDTH):
            above = ([f"steps[{(layer - 1) * WIDTH + column}]", f"steps[{(layer - 1) * WIDTH + (column + 1) % WIDTH}]"]
                     if layer else [])
            lines.append(f"steps.append(ProcessingStep(name='S{layer:02d}_{column}', code='noop.py', "
                         f"depends_on=[{', '.join(above)}]))")
    lines.append("pipeline = Pipeline(name='wide', steps=steps)")
    return "\n".join(lines) + "\n"


def seed(env: dict[str, str], project: Path, count: int) -> str:
    """Store both pipelines, one execution of the wide one (its steps Succeeded) and ``count`` small ones."""
    os.environ.update(env)
    os.chdir(project)
    from sqlalchemy import update

    from forgeline.config import Settings
    from forgeline.engine.loader import load_pipeline
    from forgeline.engine.runtime import Runtime
    from forgeline.engine.stored import store_pipeline
    from forgeline.store.metadata.tables import executions, step_runs

    runtime = Runtime.build(Settings.from_env())
    store = runtime.store
    small = store_pipeline(runtime, load_pipeline("small.py"), str(project))
    for number in range(count):
        store.create_execution(execution_id=f"{number:08d}" + os.urandom(12).hex(), pipeline_name=small.name,
                               pipeline_version=small.version, parameters={"Rows": number}, work_dir=str(project),
                               steps=[("Prepare", "Processing")], code_snapshot=small.code_snapshot)
    wide = store_pipeline(runtime, load_pipeline("wide.py"), str(project))
    wide_id = "ffffffff" + os.urandom(12).hex()
    store.create_execution(execution_id=wide_id, pipeline_name=wide.name, pipeline_version=wide.version,
                           parameters={}, work_dir=str(project), code_snapshot=wide.code_snapshot,
                           steps=[(f"S{layer:02d}_{column}", "Processing") for layer in range(LAYERS)
                                  for column in range(WIDTH)])
    with store._engine.begin() as connection:  # noqa: SLF001 - setup only: finish them all at once
        connection.execute(update(executions).values(status="Succeeded"))
        connection.execute(update(step_runs).values(status="Succeeded"))
    store.close()
    return wide_id


def measure(browser: Any, url: str, ready: str) -> tuple[float, int]:
    """Seconds from navigation start until ``ready`` (a JS condition) holds, and the bytes the page loaded."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    sizes: list[int] = []
    page.on("requestfinished", lambda request: sizes.append(len(request.response().body())))
    page.goto(url)
    page.wait_for_function(ready, timeout=120_000)
    took = page.evaluate("performance.now()") / 1000  # since this document's navigation started
    page.wait_for_load_state("networkidle")
    context.close()
    return took, sum(sizes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="forgeline-bench-ui-") as folder:
        root = Path(folder)
        project = root / "project"
        project.mkdir()
        (project / "noop.py").write_text("print('ok')\n")
        (project / "wide.py").write_text(wide_pipeline())
        (project / "small.py").write_text(
            "from forgeline.workflow import ParameterInteger, Pipeline, ProcessingStep\n"
            "rows = ParameterInteger('Rows', default_value=10)\n"
            "pipeline = Pipeline(name='small', parameters=[rows], "
            "steps=[ProcessingStep(name='Prepare', code='noop.py', arguments=[rows])])\n")
        env = {**os.environ, "FORGELINE_HOME": str(root / "home")}
        env.pop("FORGELINE_DATABASE_URL", None)
        env.pop("FORGELINE_ARTIFACT_ROOT", None)
        load = os.getloadavg()[0]
        began = time.monotonic()
        wide_id = seed(env, project, args.executions)
        print(f"seeded {args.executions:,} executions in {time.monotonic() - began:.1f} s", flush=True)
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", "server", "--port", str(port),
                                   "--no-auth"], env=env, cwd=project, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{base}/api/v1/health").status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the server did not start") from None
                time.sleep(0.1)
            pages = {
                f"execution page, {LAYERS * WIDTH} steps": (
                    f"{base}/#/executions/{wide_id}",
                    f"document.querySelectorAll('#dag .node[data-status=Succeeded]').length === {LAYERS * WIDTH}"),
                f"executions list, {args.executions:,} stored": (
                    f"{base}/#/executions",
                    "document.querySelectorAll('#executions [data-execution]').length === 50"),
            }
            rows = []
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                for name, (url, ready) in pages.items():
                    measure(browser, url, ready)  # warm the server's caches once
                    runs = [measure(browser, url, ready) for _ in range(args.repeats)]
                    times = [t for t, _ in runs]
                    rows.append((name, statistics.median(times) * 1000, max(times) * 1000, runs[-1][1]))
                    print(f"{name:34s} median {rows[-1][1]:7.0f} ms  max {rows[-1][2]:7.0f} ms  "
                          f"{rows[-1][3] / 1024:7.1f} KiB", flush=True)
                browser.close()
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    if args.no_readme:
        return
    table = ["| page | first render (median) | slowest | bytes shipped |", "|---|---:|---:|---:|"]
    table += [f"| {name} | {median:.0f} ms | {worst:.0f} ms | {size / 1024:.1f} KiB |"
              for name, median, worst, size in rows]
    block = "\n".join([
        BEGIN,
        f"Debian's chromium (headless) on this machine and one `forgeline server` on 127.0.0.1, SQLite store, "
        f"{os.cpu_count()} cores shared by both; each figure is a fresh browser context (no cache), from "
        f"navigation start until the content is in the DOM, {args.repeats} runs after one warm-up. Bytes are the "
        f"uncompressed bodies of every response of the page (HTML, JS modules, CSS, API JSON). 1-minute load "
        f"average {load:.1f} when the run began. `python benchmarks/bench_ui.py`",
        "",
        *table,
        END,
    ])
    write_section(block, BEGIN, END, HEADING)


if __name__ == "__main__":
    main()
