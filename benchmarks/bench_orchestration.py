"""Orchestration overhead: what forgeline adds per step on top of spawning a bare Python process.

Runs chains of no-op processing steps and of no-op @step functions, and a fan-out of independent steps,
each execution in a fresh temporary FORGELINE_HOME, and compares them with `python -c pass` timed in the
same run. Prints a table and rewrites the figures section of benchmarks/README.md.

    python benchmarks/bench_orchestration.py [--runs 3] [--timeout 300] [--no-readme]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from readme_section import write_section

import forgeline
from forgeline.errors import ForgelineError
from forgeline.workflow import Pipeline, ProcessingStep, step

SPAWN_SAMPLES = 20
SHORT, LONG = 10, 50
FAN_OUT = 20
README = Path(__file__).with_name("README.md")
FIGURES_BEGIN = "<!-- figures:begin (written by bench_orchestration.py) -->"
FIGURES_END = "<!-- figures:end -->"
# Each execution must see only its own fresh home, so these are cleared while it runs.
SETTINGS_ENV = ("FORGELINE_HOME", "FORGELINE_DATABASE_URL", "FORGELINE_ARTIFACT_ROOT")


def noop(previous: int) -> int:
    """Body of every @step in the function chains; returns a counter so consecutive steps chain by data."""
    return previous + 1


class BenchmarkError(Exception):
    """An execution did not succeed, so its timing means nothing."""


@dataclass(frozen=True)
class Timing:
    """Wall time of one execution, and the median gap between a step ending and the next one starting."""

    seconds: float
    handoff_seconds: float | None


def cores() -> int:
    """CPUs this process may run on (the bound for a fan-out)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def measure_spawn(samples: int = SPAWN_SAMPLES) -> float:
    """Median seconds to start and finish `python -c pass` with this interpreter: the floor of a script step."""
    subprocess.run([sys.executable, "-c", "pass"], check=True)  # page the interpreter in first
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def write_noop_scripts(folder: Path, count: int) -> list[Path]:
    """One-line scripts that do nothing, one file per step."""
    scripts = []
    for index in range(count):
        script = folder / f"noop_{index:02d}.py"
        script.write_text("pass\n")
        scripts.append(script)
    return scripts


def script_step(name: str, script: Path, after: Sequence[ProcessingStep] = ()) -> ProcessingStep:
    """A no-op processing step, ordered after `after` (it shares no data with them)."""
    if after:
        return ProcessingStep(name=name, code=str(script), depends_on=list(after))
    return ProcessingStep(name=name, code=str(script))


def script_chain(length: int, scripts: list[Path]) -> Pipeline:
    """`length` no-op processing steps, each depending on the one before."""
    steps: list[ProcessingStep] = []
    for index in range(length):
        steps.append(script_step(f"Noop{index:02d}", scripts[index], after=steps[-1:]))
    return Pipeline(name=f"bench-script-chain-{length}", steps=steps)


def function_chain(length: int) -> Pipeline:
    """`length` no-op @step functions, each taking the previous one's result."""
    result = step(name="Fn00")(noop)(0)
    results = [result]
    for index in range(1, length):
        result = step(name=f"Fn{index:02d}")(noop)(result)
        results.append(result)
    return Pipeline(name=f"bench-function-chain-{length}", steps=results)


def fan_out(width: int, scripts: list[Path]) -> Pipeline:
    """`width` independent no-op processing steps, then one step that depends on all of them."""
    branches = [script_step(f"Branch{index:02d}", scripts[index]) for index in range(width)]
    join = script_step("Join", scripts[width], after=branches)
    return Pipeline(name=f"bench-fan-out-{width}", steps=[*branches, join])


@contextmanager
def fresh_home() -> Iterator[None]:
    """Point FORGELINE_HOME at a new temporary folder (and nothing else) for the duration."""
    saved = {name: os.environ.get(name) for name in SETTINGS_ENV}
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-", ignore_cleanup_errors=True) as home:
        for name in SETTINGS_ENV:
            os.environ.pop(name, None)
        os.environ["FORGELINE_HOME"] = home
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Raise BenchmarkError if the block runs longer than `seconds` (a hung execution must not hang the run)."""

    def expire(signum: int, frame: Any) -> None:
        raise BenchmarkError(f"{what}: no result after {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def plain(value: Any) -> str:
    """An enum's JSON value, or the value itself, as text."""
    return str(getattr(value, "value", value))


def failure_report(
    pipeline_name: str, execution: Any, steps: Sequence[Any], error: BaseException | None
) -> str:
    """What went wrong, from the execution's own failure reason and those of its failed steps."""
    reason = getattr(execution, "failure_reason", None)
    if reason is None and callable(getattr(execution, "describe", None)):
        described = execution.describe()
        if isinstance(described, dict):
            reason = described.get("failure_reason") or described.get("FailureReason")
        else:
            reason = getattr(described, "failure_reason", None)
    lines = [
        f"pipeline {pipeline_name}: execution {getattr(execution, 'id', '?')} is {plain(execution.status)}",
        f"  failure_reason: {reason}",
    ]
    if error is not None:
        lines.append(f"  wait() raised {type(error).__name__}: {error}")
    lines += [
        f"  step {record.name}: {plain(record.status)}: {record.failure_reason}"
        for record in steps
        if plain(record.status) in ("Failed", "Stopped") or record.failure_reason
    ]
    return "\n".join(lines)


def handoff(steps: Sequence[Any]) -> float | None:
    """Median seconds between one step's end and the next start, over a chain's step records."""
    ordered = sorted(steps, key=lambda record: record.started_at)
    gaps = [
        (later.started_at - earlier.ended_at).total_seconds()
        for earlier, later in itertools.pairwise(ordered)
    ]
    return statistics.median(gaps) if gaps else None


def run(pipeline: Pipeline, expected_steps: int, timeout: float) -> Timing:
    """Start `pipeline` in a fresh home and time it until wait() returns; raise unless every step succeeded."""
    name = pipeline.name
    with fresh_home():
        execution = None
        error: BaseException | None = None
        start = time.perf_counter()
        try:
            with deadline(timeout, f"pipeline {name}"):
                execution = pipeline.start()
                execution.wait()
        except (ForgelineError, BenchmarkError) as exc:  # reported below, with the execution's own account
            error = exc
        elapsed = time.perf_counter() - start
        if execution is None:
            raise BenchmarkError(f"pipeline {name} did not start: {type(error).__name__}: {error}") from error
        if error is not None and callable(getattr(execution, "stop", None)):
            with contextlib.suppress(Exception):  # best effort; the failure reported below is what matters
                execution.stop()
        steps = list(execution.list_steps())
        succeeded = [record for record in steps if plain(record.status) == "Succeeded"]
        if error is not None or plain(execution.status) != "Succeeded" or len(succeeded) != expected_steps:
            report = failure_report(name, execution, steps, error)
            if error is None and len(succeeded) != expected_steps:
                report += f"\n  expected {expected_steps} succeeded steps, found {len(succeeded)}"
            raise BenchmarkError(report)
    return Timing(seconds=elapsed, handoff_seconds=handoff(steps))


@dataclass(frozen=True)
class Results:
    """Medians over the runs of every measurement."""

    runs: int
    cores: int
    spawn: float
    script: dict[int, Timing]
    function: dict[int, Timing]
    fan_out_seconds: float

    @property
    def script_per_step(self) -> float:
        return (self.script[LONG].seconds - self.script[SHORT].seconds) / (LONG - SHORT)

    @property
    def function_per_step(self) -> float:
        return (self.function[LONG].seconds - self.function[SHORT].seconds) / (LONG - SHORT)

    @property
    def fan_out_floor(self) -> float:
        return FAN_OUT / self.cores * self.spawn


def median_timing(timings: list[Timing]) -> Timing:
    """Median wall time and median handoff of repeated runs."""
    handoffs = [t.handoff_seconds for t in timings if t.handoff_seconds is not None]
    return Timing(
        seconds=statistics.median(t.seconds for t in timings),
        handoff_seconds=statistics.median(handoffs) if handoffs else None,
    )


def measure(runs: int, timeout: float) -> Results:
    """Every measurement `runs` times, interleaved so drift in the machine's load spreads over all of them."""
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-scripts-") as folder:
        scripts = write_noop_scripts(Path(folder), max(LONG, FAN_OUT + 1))
        # Untimed: pays the one-off imports of this process so the first timed execution is not an outlier.
        run(script_chain(1, scripts), 1, timeout)
        run(function_chain(1), 1, timeout)
        spawns: list[float] = []
        script: dict[int, list[Timing]] = {SHORT: [], LONG: []}
        function: dict[int, list[Timing]] = {SHORT: [], LONG: []}
        fans: list[float] = []
        for index in range(runs):
            print(f"run {index + 1}/{runs} ...", file=sys.stderr, flush=True)
            spawns.append(measure_spawn())
            for length in (SHORT, LONG):
                script[length].append(run(script_chain(length, scripts), length, timeout))
                function[length].append(run(function_chain(length), length, timeout))
            fans.append(run(fan_out(FAN_OUT, scripts), FAN_OUT + 1, timeout).seconds)
    return Results(
        runs=runs,
        cores=cores(),
        spawn=statistics.median(spawns),
        script={length: median_timing(timings) for length, timings in script.items()},
        function={length: median_timing(timings) for length, timings in function.items()},
        fan_out_seconds=statistics.median(fans),
    )


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(results: Results) -> str:
    """The figures as a Markdown table, with the goal each one is held to."""
    r = results
    rows = [
        ("Bare spawn, `python -c pass` (median of 20)", ms(r.spawn), "baseline", ""),
        (
            f"Script chain, {SHORT} steps, end to end",
            secs(r.script[SHORT].seconds),
            "< 0.5 s",
            verdict(r.script[SHORT].seconds < 0.5),
        ),
        (f"Script chain, {LONG} steps, end to end", secs(r.script[LONG].seconds), "", ""),
        (f"Script step, per step ((T{LONG} − T{SHORT}) / {LONG - SHORT})", ms(r.script_per_step), "", ""),
        (
            "Script step, per step above a bare spawn",
            ms(r.script_per_step - r.spawn),
            "≤ 10 ms",
            verdict(r.script_per_step - r.spawn <= 0.010),
        ),
        ("Script chain, step end → next step start (median)", ms(r.script[LONG].handoff_seconds), "", ""),
        (
            f"@step chain, {SHORT} steps, end to end",
            secs(r.function[SHORT].seconds),
            "< 0.5 s",
            verdict(r.function[SHORT].seconds < 0.5),
        ),
        (f"@step chain, {LONG} steps, end to end", secs(r.function[LONG].seconds), "", ""),
        (
            f"@step, per step ((T{LONG} − T{SHORT}) / {LONG - SHORT})",
            ms(r.function_per_step),
            "≤ 10 ms",
            verdict(r.function_per_step <= 0.010),
        ),
        ("@step chain, step end → next step start (median)", ms(r.function[LONG].handoff_seconds), "", ""),
        (
            f"Fan-out, {FAN_OUT} script steps + 1 joining step",
            secs(r.fan_out_seconds),
            "bounded by cores",
            "",
        ),
        (f"Fan-out floor, {FAN_OUT} / {r.cores} cores × bare spawn", ms(r.fan_out_floor), "", ""),
        ("Fan-out ÷ floor", f"{r.fan_out_seconds / r.fan_out_floor:.1f}×", "", ""),
    ]
    lines = ["| Measurement | Median | Goal | Met |", "|---|---:|---|---|"]
    lines += [f"| {what} | {value} | {goal} | {met} |" for what, value, goal, met in rows]
    return "\n".join(lines)


def figures_section(results: Results) -> str:
    """The README block between the figure markers: where and how the numbers were taken, then the table."""
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    machine = f"{platform.system()} {platform.machine()}, {results.cores} cores"
    return "\n".join(
        [
            FIGURES_BEGIN,
            (
                f"Measured {when} with forgeline {forgeline.__version__}, Python {platform.python_version()}, "
                f"{machine}; median of {results.runs} runs, each execution in a fresh `FORGELINE_HOME`."
            ),
            "",
            table(results),
            FIGURES_END,
        ]
    )


def write_readme(section: str, readme: Path = README) -> None:
    """Replace the figures between the markers of `readme`, or append them if the markers are missing."""
    write_section(section, FIGURES_BEGIN, FIGURES_END, "## Figures", readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", type=int, default=3, help="repetitions of each measurement (median reported)"
    )
    parser.add_argument(
        "--timeout", type=float, default=300.0, help="seconds before an execution counts as hung"
    )
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        results = measure(args.runs, args.timeout)
    except BenchmarkError as exc:
        print(f"benchmark aborted, an execution failed:\n{exc}", file=sys.stderr)
        return 1
    print(table(results))
    if not args.no_readme:
        write_readme(figures_section(results))
        print("\nfigures written to benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
