"""The serving benchmark's tables and its section of benchmarks/README.md."""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import Any

from bench_transform import CORES
from readme_section import write_section

import forgeline

SECTION_BEGIN = "<!-- serving:begin (written by bench_serving.py) -->"
SECTION_END = "<!-- serving:end -->"
GOAL_CPU_US, GOAL_RATE, GOAL_OK, GOAL_P99_MS, GOAL_START_S, GOAL_RSS_MB = 300.0, 3000.0, 99.9, 20.0, 3.0, 200.0
CPU_GOAL_RATE = 1000.0  # the rate whose CPU per request is held against the goal


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def rate_table(results: list[Any]) -> str:
    """One row per server and rate."""
    lines = ["| Server | Rate (rps) | Sent | OK % | p50 ms | p99 ms | p99.9 ms | Server CPU µs / request "
             "| Failures | Others' CPU share |", "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for measured in results:
        if measured.failure:
            lines.append(f"| {measured.name} | — | | | | | | | not measured: {measured.failure} | |")
            continue
        for row in measured.rows:
            r = row.result
            failures = ", ".join(f"{kind} × {count}" for kind, count in r.errors.items()) or ""
            cpu = "—" if row.cpu_us is None else f"{row.cpu_us:,.0f}"
            lines.append(f"| {measured.name} | {r.rate:g} | {r.sent:,} | {r.ok_percent:.2f} | {_ms(r.p50_ms)} "
                         f"| {_ms(r.p99_ms)} | {_ms(r.p999_ms)} | {cpu} | {failures} | {row.foreign:.0%} |")
    return "\n".join(lines)


def worker_rss(measured: Any) -> float | None:
    """RSS of the largest worker: a child process when there are any, else the single process."""
    if not measured.rss_mb:
        return None
    return max(measured.rss_mb[1:] or measured.rss_mb)


def server_table(results: list[Any]) -> str:
    """Start-up and memory per server."""
    lines = ["| Server | Start-up (to the first answer) | Processes | RSS per process, MB (root first) "
             "| Largest worker RSS, MB |", "|---|---:|---:|---|---:|"]
    for measured in results:
        if measured.failure or measured.startup is None:
            continue
        rss = worker_rss(measured)
        lines.append(f"| {measured.name} | {measured.startup:.2f} s | {len(measured.rss_mb)} "
                     f"| {', '.join(f'{mb:.0f}' for mb in measured.rss_mb)} | {'—' if rss is None else f'{rss:.0f}'} |")
    return "\n".join(lines)


def tables(results: list[Any]) -> str:
    """Both tables, for the terminal."""
    return rate_table(results) + "\n\n" + server_table(results)


def _row(measured: Any, rate: float) -> Any:
    return next((row for row in measured.rows if row.result.rate == rate), None)


def goals(results: list[Any]) -> str:
    """forgeline's figures against the issue's goals."""
    ours = next((m for m in results if m.name == "forgeline" and not m.failure), None)
    if ours is None:
        return "forgeline's endpoint was not measured in this run, so no goal is checked."
    checks = []
    at_cpu = _row(ours, CPU_GOAL_RATE)
    if at_cpu is not None and at_cpu.cpu_us is not None:
        checks.append(f"server CPU at {CPU_GOAL_RATE:g} rps {at_cpu.cpu_us:,.0f} µs / request (goal ≤ "
                      f"{GOAL_CPU_US:.0f}: {'met' if at_cpu.cpu_us <= GOAL_CPU_US else 'missed'})")
    top = _row(ours, GOAL_RATE)
    if top is None:
        checks.append(f"{GOAL_RATE:g} rps was not reached (goal: ≥ {GOAL_OK} % success with p99 < "
                      f"{GOAL_P99_MS:.0f} ms: missed)")
    else:
        r = top.result
        met = r.ok_percent >= GOAL_OK and r.p99_ms is not None and r.p99_ms < GOAL_P99_MS
        checks.append(f"{GOAL_RATE:g} rps open loop: {r.ok_percent:.2f} % success, p99 {_ms(r.p99_ms)} ms (goal ≥ "
                      f"{GOAL_OK} % with p99 < {GOAL_P99_MS:.0f} ms: {'met' if met else 'missed'})")
    if ours.startup is not None:
        checks.append(f"start-up {ours.startup:.2f} s (goal < {GOAL_START_S:.0f} s: "
                      f"{'met' if ours.startup < GOAL_START_S else 'missed'})")
    rss = worker_rss(ours)
    if rss is not None:
        checks.append(f"largest worker RSS {rss:.0f} MB (goal < {GOAL_RSS_MB:.0f} MB: "
                      f"{'met' if rss < GOAL_RSS_MB else 'missed'})")
    return "forgeline against the goals: " + "; ".join(checks) + "."


def answers(results: list[Any]) -> str:
    """The first answer of each server to the benchmark's order: the same model must give the same probability."""
    return "; ".join(f"{m.name} `{m.answer[:80]}`" for m in results if m.answer)


def generator_line(result: Any, cpu_us: float) -> str:
    """What the load generator itself costs, from a run against a server that answers at once."""
    return (f"The load generator alone, against a server that answers `{{}}` at once, at {result.rate:g} rps for "
            f"{result.duration:g} s: {result.ok_percent:.2f} % answered, p50 {_ms(result.p50_ms)} ms, p99 "
            f"{_ms(result.p99_ms)} ms, p99.9 {_ms(result.p999_ms)} ms; its own sends left up to "
            f"{result.send_lag_p99_ms:.1f} ms after their scheduled time (p99); it spent {cpu_us:.0f} µs of CPU "
            f"per request ({cpu_us * result.rate / 1e4:.0f} % of one core).")


def section(results: list[Any], rates: list[float], duration: float, workers: int, body_bytes: int,
            generator: tuple[Any, float]) -> str:
    """The README block: method, machine, both tables and the goals."""
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return "\n".join([
        SECTION_BEGIN,
        "## Real-time serving (`bench_serving.py`)",
        "",
        "One model for every server: a HistGradientBoostingClassifier on 34 features extracted from a nested JSON "
        f"payment order (`serving_model.py`; the order posted is {body_bytes:,} bytes). **forgeline**: the model "
        "registered as an Approved package that accepts batches, an endpoint following `fraud@approved`, "
        f"`forgeline serve` with {workers} workers. **FastAPI**: a hand-written `async def` app calling the same "
        f"predictor (`serving_baseline.py`) under uvicorn with uvloop and httptools, {workers} workers. "
        f"**MLflow**: `mlflow models serve --env-manager local -w {workers}` on the same classifier as a pyfunc "
        "model (`serving_mlflow.py`) from its own virtual environment; its protocol needs the order wrapped as "
        "`{\"dataframe_records\": [order]}`.",
        "",
        "One server at a time: started and timed until its first successful answer, warmed for 2 s, then loaded "
        f"open loop by `forgeline.serving.loadtest` at {', '.join(f'{r:g}' for r in rates)} requests per second, "
        f"{duration:g} s each (requests leave on a fixed schedule; latency counts from the scheduled send, so a "
        "server's queue shows; a request unanswered 5 s after its scheduled send is a failure). Server CPU is "
        "user + system time of the server's whole process tree over the answered requests; RSS is read per "
        f"process after the last rate. A server answering under half of a rate's requests is not run at higher "
        "rates. The load generator shares the cores with the server. The baselines run with one OpenMP/BLAS "
        "thread per process (`OMP_NUM_THREADS=1` …; forgeline's workers set it themselves): with a thread pool in "
        "every process on shared cores, a one-row HistGradientBoosting predict spun for up to seconds here, and "
        "forgeline and FastAPI alike lost requests at 200 rps. At low rates CPU per request is mostly one one-row "
        "predict per request; forgeline's micro-batching shares one predict among the requests that arrive "
        "together.",
        "",
        generator_line(*generator),
        "",
        f"Measured {when} with forgeline {forgeline.__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {CORES} cores shared with other work (the last column: the "
        "share of the cores other processes used during that run). One run; compare figures of one run only.",
        "",
        rate_table(results),
        "",
        server_table(results),
        "",
        goals(results),
        "",
        f"First answers: {answers(results)}.",
        SECTION_END,
    ])


def write_readme(text: str) -> None:
    """Replace the block between the serving markers, or append it."""
    write_section(text, SECTION_BEGIN, SECTION_END)
