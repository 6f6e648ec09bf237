"""Training overhead: what the training contract costs over a processing step, and orchestration's share of a real run.

1. A no-op script run as a one-step pipeline, once as a TrainingStep and once as a ProcessingStep, interleaved,
   each execution in a fresh FORGELINE_HOME: wall time and the step's own duration, medians of --runs.
2. The vision example (examples/vision/pipeline.py, default parameters, nothing cached): the execution's own wall
   time (created → ended, from its record) split into job time (the step durations along the critical path) and
   orchestration time (the rest: the orchestrator process starting, then the hand-offs between steps).

Prints a table and rewrites the training section of benchmarks/README.md.

    python benchmarks/bench_training.py [--runs 7] [--vision-runs 3] [--timeout 300] [--no-readme]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench_orchestration import BenchmarkError, deadline, failure_report, fresh_home, plain
from readme_section import write_section

import forgeline
from forgeline.engine.loader import load_pipeline
from forgeline.errors import ForgelineError
from forgeline.workflow import Pipeline, ProcessingStep, TrainingStep

REPO_ROOT = Path(__file__).resolve().parents[1]
README = Path(__file__).with_name("README.md")
VISION = "examples/vision/pipeline.py"
SECTION_BEGIN = "<!-- training:begin (written by bench_training.py) -->"
SECTION_END = "<!-- training:end -->"
ORCHESTRATION_GOAL = 0.05


@dataclass(frozen=True)
class Run:
    """One finished execution: its wall time as the caller saw it, its record and its step records."""

    seconds: float
    record: Any
    steps: list[Any]

    @property
    def execution_seconds(self) -> float:
        """Created → ended, from the execution's record: without start()'s database work and wait()'s polling."""
        return float((self.record.ended_at - self.record.created_at).total_seconds())

    @property
    def startup_seconds(self) -> float:
        """Created → the first step's start: the orchestrator process starting."""
        first = min(r.started_at for r in self.steps if r.started_at is not None)
        return float((first - self.record.created_at).total_seconds())

    def orchestration_seconds(self, pipeline: Pipeline) -> float:
        """The execution's time outside the critical path of its steps."""
        return self.execution_seconds - critical_path_seconds(pipeline, self.steps)


def step_seconds(record: Any) -> float:
    """How long one step ran, from its record (0 for a step that never started)."""
    if record.started_at is None or record.ended_at is None:
        return 0.0
    return float((record.ended_at - record.started_at).total_seconds())


def timed(pipeline: Pipeline, timeout: float) -> Run:
    """Start ``pipeline`` in a fresh home and time it until wait() returns; raise unless it succeeded."""
    with fresh_home():
        execution = None
        error: BaseException | None = None
        start = time.perf_counter()
        try:
            with deadline(timeout, f"pipeline {pipeline.name}"):
                execution = pipeline.start()
                execution.wait()
        except (ForgelineError, BenchmarkError) as exc:
            error = exc
        elapsed = time.perf_counter() - start
        if execution is None:
            raise BenchmarkError(f"pipeline {pipeline.name} did not start: {error}") from error
        steps = list(execution.list_steps())
        if error is not None or plain(execution.status) != "Succeeded":
            with contextlib.suppress(Exception):
                execution.stop()
            raise BenchmarkError(failure_report(pipeline.name, execution, steps, error))
    return Run(seconds=elapsed, record=execution.record(), steps=steps)


def critical_path_seconds(pipeline: Pipeline, steps: list[Any]) -> float:
    """The longest chain of step durations through the pipeline's DAG."""
    durations = {record.name: step_seconds(record) for record in steps}
    longest: dict[str, float] = {}
    for name in pipeline.graph.order:
        before = [longest[up] for up in pipeline.graph.upstream[name] if up in longest]
        longest[name] = durations.get(name, 0.0) + max(before, default=0.0)
    return max(longest.values(), default=0.0)


@dataclass(frozen=True)
class Results:
    """Medians of every measurement."""

    runs: int
    vision_runs: int
    training_wall: float
    training_step: float
    processing_wall: float
    processing_step: float
    vision_wall: float
    vision_execution: float
    vision_jobs: float
    vision_orchestration: float
    vision_startup: float
    vision_handoffs: float


@contextlib.contextmanager
def at_repo_root() -> Iterator[None]:
    """The vision example's paths are relative to the repository root."""
    previous = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        yield
    finally:
        os.chdir(previous)


def measure(runs: int, vision_runs: int, timeout: float) -> Results:
    """Both comparisons, the no-op pair interleaved so drift in the machine's load hits both alike."""
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-training-") as folder:
        script = Path(folder) / "noop.py"
        script.write_text("pass\n")
        as_training = Pipeline(name="bench-noop-training",
                               steps=[TrainingStep(name="Noop", entry_point=str(script))])
        as_processing = Pipeline(name="bench-noop-processing", steps=[ProcessingStep(name="Noop", code=str(script))])
        timed(as_training, timeout)  # untimed warm-up: this process's one-off imports
        timed(as_processing, timeout)
        training: list[Run] = []
        processing: list[Run] = []
        for index in range(runs):
            print(f"no-op run {index + 1}/{runs} ...", file=sys.stderr, flush=True)
            training.append(timed(as_training, timeout))
            processing.append(timed(as_processing, timeout))
    with at_repo_root():
        vision = load_pipeline(VISION)
        runs_of_vision = []
        for index in range(vision_runs):
            print(f"vision run {index + 1}/{vision_runs} ...", file=sys.stderr, flush=True)
            runs_of_vision.append(timed(vision, timeout))
    return Results(
        runs=runs, vision_runs=vision_runs,
        training_wall=statistics.median(r.seconds for r in training),
        training_step=statistics.median(step_seconds(r.steps[0]) for r in training),
        processing_wall=statistics.median(r.seconds for r in processing),
        processing_step=statistics.median(step_seconds(r.steps[0]) for r in processing),
        vision_wall=statistics.median(r.seconds for r in runs_of_vision),
        vision_execution=statistics.median(r.execution_seconds for r in runs_of_vision),
        vision_jobs=statistics.median(critical_path_seconds(vision, r.steps) for r in runs_of_vision),
        vision_orchestration=statistics.median(r.orchestration_seconds(vision) for r in runs_of_vision),
        vision_startup=statistics.median(r.startup_seconds for r in runs_of_vision),
        vision_handoffs=statistics.median(r.orchestration_seconds(vision) - r.startup_seconds
                                          for r in runs_of_vision),
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def table(r: Results) -> str:
    """The figures as a Markdown table."""
    share = r.vision_orchestration / (r.vision_orchestration + r.vision_jobs)
    rows = [
        ("No-op TrainingStep, execution wall time", ms(r.training_wall), ""),
        ("No-op ProcessingStep, execution wall time", ms(r.processing_wall), ""),
        ("No-op TrainingStep, step duration", ms(r.training_step), ""),
        ("No-op ProcessingStep, step duration", ms(r.processing_step), ""),
        ("Training contract, above processing (step duration)", ms(r.training_step - r.processing_step), ""),
        ("Vision pipeline, start() → wait() returns", f"{r.vision_wall:.2f} s", "with a new database"),
        ("Vision pipeline, execution created → ended", f"{r.vision_execution:.2f} s", "what is split below"),
        ("— job time (critical path of step durations)", f"{r.vision_jobs:.2f} s", ""),
        ("— orchestration time (the rest)", f"{r.vision_orchestration:.2f} s",
         f"{share:.1%}; goal < {ORCHESTRATION_GOAL:.0%}: " + ("met" if share < ORCHESTRATION_GOAL else "**missed**")),
        ("—— of which the orchestrator starting (created → first step)", f"{r.vision_startup:.2f} s", ""),
        ("—— of which hand-offs between steps and the end", f"{r.vision_handoffs:.2f} s", ""),
    ]
    lines = ["| Measurement | Median | Note |", "|---|---:|---|"]
    lines += [f"| {what} | {value} | {note} |" for what, value, note in rows]
    return "\n".join(lines)


def section(r: Results) -> str:
    """The README block between the training markers."""
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    return "\n".join([
        SECTION_BEGIN,
        f"Measured {when} with forgeline {forgeline.__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores; no-op figures are medians of "
        f"{r.runs} runs, vision figures of {r.vision_runs}, each execution in a fresh `FORGELINE_HOME`.",
        "",
        table(r),
        SECTION_END,
    ])


def write_readme(text: str, readme: Path = README) -> None:
    """Replace the block between the training markers, or append it under its own heading."""
    write_section(text, SECTION_BEGIN, SECTION_END, "## Training overhead (`bench_training.py`)", readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="executions of each no-op pipeline")
    parser.add_argument("--vision-runs", type=int, default=3, help="executions of the vision pipeline")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before an execution counts as hung")
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.vision_runs < 1:
        parser.error("--runs and --vision-runs must be at least 1")
    try:
        results = measure(args.runs, args.vision_runs, args.timeout)
    except BenchmarkError as exc:
        print(f"benchmark aborted, an execution failed:\n{exc}", file=sys.stderr)
        return 1
    print(table(results))
    if not args.no_readme:
        write_readme(section(results))
        print("\nfigures written to benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
