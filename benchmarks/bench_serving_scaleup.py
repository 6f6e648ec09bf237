"""Serving scale-up: from a load step (50 → 1000 requests/s) to a new worker serving.

The same model and endpoint as ``bench_serving.py``, served by ``forgeline serve --workers-min 1 --workers-max 2``.
The load runs open loop at 50 requests/s, then steps to 1000 requests/s. Reported: the time from the step to the
log line of the second worker serving (read from the server's log as it is written), the server's own figure
for the same hand-over (from the decision to scale to the worker serving), and the open-loop result of each phase.

    python benchmarks/bench_serving_scaleup.py [--low-seconds 5] [--high-seconds 10] [--no-readme]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import serving_model
from bench_serving import Server, forgeline_server, free_port, running
from readme_section import write_section

from forgeline.serving.loadtest import LoadTest, RateResult

BEGIN = "<!-- serving-scaleup:begin (written by bench_serving_scaleup.py) -->"
END = "<!-- serving-scaleup:end -->"
SERVING_AGAIN = re.compile(r"worker \d+ serving \((\d+) workers\), (\d+) ms after requests waiting asked for it")


def watch_for_scale_up(log: Path, stop: threading.Event, found: dict[str, float]) -> None:
    """Record when the log first says a second worker serves, and the server's own figure for it."""
    while not stop.is_set():
        match = SERVING_AGAIN.search(log.read_text(errors="replace"))
        if match and int(match.group(1)) >= 2:
            found["seen_at"] = time.monotonic()
            found["server_ms"] = float(match.group(2))
            return
        time.sleep(0.005)


def row(label: str, result: RateResult) -> str:
    """One table row for a load phase."""
    return (f"| {label} | {result.rate:.0f} | {result.sent} | {result.ok_percent:.1f} | {result.p50_ms:.1f} | "
            f"{result.p99_ms:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--low-seconds", type=float, default=5.0)
    parser.add_argument("--high-seconds", type=float, default=10.0)
    parser.add_argument("--high-rate", type=float, default=1000.0, help="requests/s after the step")
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    body = json.dumps(serving_model.make_order(random.Random(11), 1)).encode()
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-scaleup-") as folder:
        workspace = Path(folder)
        model_dir, code_dir = serving_model.write_package(workspace / "package", serving_model.train())
        server: Server = forgeline_server(workspace, model_dir, code_dir, 1, free_port())
        at = server.command.index("--workers-max")
        server.command[at + 1] = "2"
        log = workspace / "serve.log"
        with running(server, body, log):
            load = LoadTest(f"http://127.0.0.1:{server.port}{server.path}", body)
            low = load.run(50, args.low_seconds)
            found: dict[str, float] = {}
            stop = threading.Event()
            watcher = threading.Thread(target=watch_for_scale_up, args=(log, stop, found), daemon=True)
            watcher.start()
            stepped_at = time.monotonic()
            high = load.run(args.high_rate, args.high_seconds)
            stop.set()
            watcher.join()
    step_ms = (found["seen_at"] - stepped_at) * 1000 if "seen_at" in found else None
    lines = [
        "| Phase | rate | sent | ok % | p50 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|",
        row("before the step (1 worker)", low),
        row("after the step (up to 2 workers)", high),
        "",
        f"Load step → second worker serving: "
        f"{f'{step_ms:.0f} ms' if step_ms is not None else 'no scale-up: requests never waited long enough to ask'}"
        + (f" (the server's own figure, decision → serving: {found['server_ms']:.0f} ms)." if found else "."),
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_readme:
        measured = time.strftime("%Y-%m-%d")
        write_section(f"{BEGIN}\nMeasured {measured}, 2 cores; one run.\n\n{table}\n{END}", BEGIN, END,
                      heading="## Serving scale-up (`bench_serving_scaleup.py`)\n\n"
                              "A load step from 50 requests/s (to 1000 by default) against one worker allowed to "
                              "grow to two.\n\n")
        print("\nfigures written to benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
