"""A server's queue under load: N executions queued at once, drained by launcher processes sharing one database.

Queues N executions of a one-step pipeline (a ConditionStep: the orchestrator does the work, no job process),
starts L launcher processes (`QueueLauncher(runtime, M).run_forever`), and waits until every execution ended.
Reports how long queueing and draining took, the peak number of executions running at once (from their
recorded start and end times: at most M), how the launches split between launchers, and whether any execution
was claimed twice. Prints a table and rewrites this benchmark's section of benchmarks/README.md.

    python benchmarks/bench_queue.py [--executions 1000] [--launchers 2] [--max-running 4] [--no-readme]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from readme_section import write_section

LAUNCHER = """
import logging, signal, sys, threading
from forgeline.engine.launch import QueueLauncher
from forgeline.engine.runtime import Runtime

logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
QueueLauncher(Runtime.from_env(), int(sys.argv[1])).run_forever(stop, poll_seconds=0.1)
"""

PIPELINE = """
    from forgeline.workflow import ConditionEquals, ConditionStep, ParameterInteger, Pipeline

    number = ParameterInteger("Number", default_value=0)
    pipeline = Pipeline(name="queued", parameters=[number], steps=[
        ConditionStep(name="Check", conditions=[ConditionEquals(number, 0)], if_steps=[], else_steps=[])])
"""

LAUNCHED = re.compile(r"execution (\w+) launched \(epoch (\d+)")
BEGIN = "<!-- queue:begin (written by bench_queue.py) -->"
END = "<!-- queue:end -->"


def peak_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    """The most intervals that hold at one moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                   key=lambda edge: (edge[0], edge[1]))
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--executions", type=int, default=1000)
    parser.add_argument("--launchers", type=int, default=2)
    parser.add_argument("--max-running", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--no-readme", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="forgeline-bench-queue-") as folder:
        root = Path(folder)
        os.environ["FORGELINE_HOME"] = str(root / "home")
        for name in ("FORGELINE_DATABASE_URL", "FORGELINE_ARTIFACT_ROOT"):
            os.environ.pop(name, None)
        (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
        os.chdir(root)
        from forgeline.engine.loader import load_pipeline
        from forgeline.engine.runtime import Runtime

        pipeline = load_pipeline("pipeline.py")
        began = time.monotonic()
        ids = {pipeline.start(parameters={"Number": n % 2}, queued=True).id for n in range(args.executions)}
        queued_seconds = time.monotonic() - began

        logs = [root / f"launcher-{n}.log" for n in range(args.launchers)]
        launchers = []
        began = time.monotonic()
        for log in logs:
            with open(log, "wb") as handle:
                launchers.append(subprocess.Popen([sys.executable, "-c", LAUNCHER, str(args.max_running)],
                                                  cwd=root, stdout=handle, stderr=subprocess.STDOUT))
        store = Runtime.at_edge().store
        try:
            while True:
                records = [r for r in store.list_executions(limit=args.executions + 1) if r.id in ids]
                if all(r.status.is_terminal for r in records):
                    break
                if time.monotonic() - began > args.timeout:
                    raise SystemExit(f"not drained after {args.timeout} s")
                time.sleep(1.0)
            drained_seconds = time.monotonic() - began
        finally:
            for launcher in launchers:
                launcher.send_signal(signal.SIGTERM)
            for launcher in launchers:
                launcher.wait(timeout=60)

        launches = [[m.group(1) for m in LAUNCHED.finditer(log.read_text())] for log in logs]
        every = Counter(i for launched in launches for i in launched)
        statuses = Counter(r.status.value for r in records)
        peak = peak_overlap([(r.started_at, r.ended_at) for r in records if r.started_at and r.ended_at])
        twice = sum(1 for count in every.values() if count > 1) + sum(1 for r in records if r.epoch != 1)

    rows = [
        ("executions queued at once", f"{args.executions}"),
        ("queueing them (Pipeline.start(queued=True), one process)", f"{queued_seconds:.1f} s"),
        (f"draining them ({args.launchers} launcher processes, max_running {args.max_running})",
         f"{drained_seconds:.1f} s ({args.executions / drained_seconds:.1f} executions/s)"),
        ("final statuses", ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))),
        ("peak executions running at once (recorded start/end)", f"{peak}"),
        ("launches per launcher", " / ".join(str(len(launched)) for launched in launches)),
        ("executions launched or claimed more than once", f"{twice}"),
    ]
    width = max(len(label) for label, _ in rows)
    table = "\n".join(f"| {label:<{width}} | {value} |" for label, value in rows)
    header = f"| {'':<{width}} | |\n|{'-' * (width + 2)}|---|"
    block = (f"{BEGIN}\nMeasured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()} "
             f"({os.cpu_count()} cores), SQLite, Python {platform.python_version()}.\n\n{header}\n{table}\n{END}")
    print(block)
    if not args.no_readme:
        write_section(block, BEGIN, END, heading="## Queued executions (`bench_queue.py`)\n\nN executions queued "
                      "at once and drained by launcher processes sharing one SQLite database; every execution "
                      "runs once, at most max_running at a time.")
    return 0 if twice == 0 and statuses.get("Succeeded", 0) == args.executions and peak <= args.max_running else 1


if __name__ == "__main__":
    sys.exit(main())
