"""Batch transform throughput: rows/s of the transform against predicting the whole dataset in one process.

Data: a CSV of 1,000,000 rows × 8 numeric columns (normal, 6 decimals, ~73 MB), written once into a temporary
folder and reused. Model: scikit-learn's LogisticRegression fitted on 50,000 of those rows, saved as
``model.joblib`` and served by the default handlers (no entry point), as a registered package would be.

1. Ceiling, one process: the same ``input_fn`` → ``predict_fn`` → ``output_fn`` of the loaded predictor on the
   whole file at once (its bytes already in memory), plus the bare ``model.predict`` on the parsed array.
2. The batch transform job (``batch_transform.py``, the process a TransformStep runs, on ``transform_folder``)
   with 1 and 2 workers, end to end: the job's process starting, its workers starting and loading the model,
   reading, predicting, writing the output. The workers are forked by the warm transform server, which an
   untimed job started and warmed (it has imported scikit-learn); the same job with
   ``FORGELINE_TRANSFORM_WARM_SECONDS=0`` spawns its workers, each importing scikit-learn, as every job did before
   the server. Start-up alone is measured as the same job on two one-row files (two batches, so that both workers
   start); "after start-up" is rows / (end to end − start-up).
3. The first job on a new server (its own ``PYTHONPATH`` entry gives it one): the server starts, and its workers
   import scikit-learn themselves. And a 10,000-row job (the first rows of the file), end to end.
4. Once through a whole pipeline: a TransformStep with ``instance_count=2`` in a fresh ``FORGELINE_HOME``; the
   step's duration includes staging the 73 MB input and collecting the output.

Measurements are interleaved over --rounds rounds; the table gives medians (and the best round, which is what
the hardware can do when nothing else runs on it). Goals: 2 workers on 2 cores reach ≥ 80 % of 2 × ceiling after
start-up and ≥ 60 % end to end; a 10,000-row job ends in < 1 s.

    python benchmarks/bench_transform.py [--rows 1000000] [--rounds 5] [--no-pipeline] [--no-readme]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench_orchestration import BenchmarkError, deadline, failure_report, fresh_home, plain
from readme_section import write_section

import forgeline
from forgeline.inference.loader import ModelSource, Predictor, load_model
from forgeline.workflow import Model, Pipeline, TransformInput, TransformStep

README = Path(__file__).with_name("README.md")
SECTION_BEGIN = "<!-- transform:begin (written by bench_transform.py) -->"
SECTION_END = "<!-- transform:end -->"
COLUMNS = 8
FIT_ROWS = 50_000
CONTENT_TYPE = "text/csv"
GOAL = 0.80
END_TO_END_GOAL = 0.60
SMALL_ROWS = 10_000
SMALL_GOAL_SECONDS = 1.0
PAYLOAD_MB = 6.0
TINY_ROWS = 2
DATA_VERSION = 1  # bump when the generated data changes
BATCH_TRANSFORM_SCRIPT = str(Path(forgeline.__file__).parent / "jobs" / "entrypoints" / "batch_transform.py")
"""The job's own script, by its path in the package (as a TransformStep's job runs it)."""
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@dataclass(frozen=True)
class Workspace:
    """The generated data, the model folder and a scratch folder for outputs."""

    data: Path
    tiny: Path
    small: Path
    model: Path
    scratch: Path
    rows: int


def generate(rows: int, root: Path) -> Workspace:
    """Write the CSV (once: reused while it exists with the right size) and fit the model on a sample."""
    import joblib
    import numpy
    from sklearn.linear_model import LogisticRegression

    root.mkdir(parents=True, exist_ok=True)
    data = root / f"data-v{DATA_VERSION}-{rows}x{COLUMNS}.csv"
    generator = numpy.random.default_rng(7)
    features = generator.normal(size=(rows, COLUMNS)).round(6)
    if not data.exists() or data.read_bytes().count(b"\n") != rows:
        print(f"writing {rows:,} rows to {data} ...", file=sys.stderr, flush=True)
        partial = data.with_suffix(".partial")
        numpy.savetxt(partial, features, fmt="%.6f", delimiter=",")
        partial.rename(data)
    tiny = root / "tiny"  # one row in each of two files: two batches, so that both workers start
    shutil.rmtree(tiny, ignore_errors=True)
    tiny.mkdir()
    for index, line in enumerate(_first_lines(data, TINY_ROWS)):
        (tiny / f"part-{index}.csv").write_bytes(line)
    small = root / "small"
    shutil.rmtree(small, ignore_errors=True)
    small.mkdir()
    (small / "part-0.csv").write_bytes(b"".join(_first_lines(data, min(SMALL_ROWS, rows))))
    sample = features[:FIT_ROWS]
    labels = (sample @ numpy.linspace(-1, 1, COLUMNS) + 0.1 * generator.normal(size=len(sample)) > 0).astype(int)
    model = root / "model"
    model.mkdir(exist_ok=True)
    joblib.dump(LogisticRegression().fit(sample, labels), model / "model.joblib")
    scratch = root / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    return Workspace(data, tiny, small, model, scratch, rows)


def _first_lines(path: Path, count: int) -> list[bytes]:
    with path.open("rb") as handle:
        return [handle.readline() for _ in range(count)]


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every core, from /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU seconds of this process and of the children it has waited for (the transform job and its workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


class ForeignLoad:
    """Measures how much of the machine other processes used while a block ran (0 = the cores were ours)."""

    def __init__(self) -> None:
        self.share = 0.0

    def __enter__(self) -> ForeignLoad:
        self._busy, self._own, self._wall = busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        wall = time.perf_counter() - self._wall
        foreign = (busy_cpu_seconds() - self._busy) - (own_cpu_seconds() - self._own)
        self.share = max(0.0, foreign / (max(wall, 1e-9) * CORES))


def wait_for_quiet(limit_seconds: float, threshold: float = 0.2) -> float:
    """Wait (at most ``limit_seconds``) until other processes use less than ``threshold`` of the cores."""
    deadline_at = time.monotonic() + limit_seconds
    while True:
        with ForeignLoad() as load:
            time.sleep(1.0)
        if load.share < threshold or time.monotonic() >= deadline_at:
            return load.share
        print(f"  waiting for a quieter machine (others use {load.share:.0%} of it) ...", file=sys.stderr,
              flush=True)


@dataclass
class Samples:
    """Seconds per round of every measurement."""

    ceiling: list[float] = field(default_factory=list)
    predict_only: list[float] = field(default_factory=list)
    full: dict[int, list[float]] = field(default_factory=lambda: {1: [], 2: []})
    startup: dict[int, list[float]] = field(default_factory=lambda: {1: [], 2: []})
    spawned_full: list[float] = field(default_factory=list)  # 2 workers, FORGELINE_TRANSFORM_WARM_SECONDS=0
    spawned_startup: list[float] = field(default_factory=list)
    new_server: list[float] = field(default_factory=list)  # 2 workers, end to end, the first job of a new server
    small: list[float] = field(default_factory=list)  # 2 workers, SMALL_ROWS rows, end to end
    pipeline_step: list[float] = field(default_factory=list)
    pipeline_wall: list[float] = field(default_factory=list)
    foreign: list[float] = field(default_factory=list)  # others' share of the cores during the timed runs


def measure_ceiling(predictor: Predictor, body: bytes) -> tuple[float, float]:
    """Seconds for input_fn → predict_fn → output_fn on the whole body, and for predict_fn alone."""
    chosen = predictor.handlers
    started = time.perf_counter()
    data = chosen.input_fn(body, CONTENT_TYPE)
    prediction = chosen.predict_fn(data, predictor.model)
    output = chosen.output_fn(prediction, CONTENT_TYPE)
    if isinstance(output, str):
        output = output.encode()
    total = time.perf_counter() - started
    lines = output.count(b"\n")
    if lines != len(data):
        raise BenchmarkError(f"the ceiling produced {lines} lines for {len(data)} rows")
    started = time.perf_counter()
    chosen.predict_fn(data, predictor.model)
    return total, time.perf_counter() - started


def measure_transform(space: Workspace, source: Path, workers: int, env: dict[str, str] | None = None) -> float:
    """Seconds of the batch transform job's own process over ``source`` with ``workers`` workers, checked.

    The job is run as a TransformStep runs it (``python batch_transform.py ...``, inputs already staged): its
    workers then import only what the job imports, not this benchmark. ``env``: variables added to the job's.
    """
    target = space.scratch / f"out-{workers}"
    shutil.rmtree(target, ignore_errors=True)
    command = [sys.executable, BATCH_TRANSFORM_SCRIPT, "--input", str(source), "--output", str(target),
               "--model", str(space.model), "--content-type", CONTENT_TYPE, "--accept", CONTENT_TYPE,
               "--max-payload-mb", str(PAYLOAD_MB), "--workers", str(workers)]
    started = time.perf_counter()
    job = subprocess.run(command, cwd=space.scratch, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                         env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - started
    if job.returncode != 0:
        raise BenchmarkError(f"the transform job with {workers} worker(s) failed: {job.stderr.strip()}")
    expected = {space.tiny: TINY_ROWS, space.small: min(SMALL_ROWS, space.rows)}.get(source, space.rows)
    written = sum(output.read_bytes().count(b"\n") for output in target.rglob("*.out"))
    if written != expected:
        raise BenchmarkError(f"the transform job with {workers} worker(s) wrote {written} lines for {expected} rows")
    return seconds


def measure_pipeline(space: Workspace, timeout: float) -> tuple[float, float]:
    """Step duration and start() → wait() seconds of a one-step pipeline: TransformStep with 2 workers."""
    step = TransformStep(
        name="Predict", model=Model(model_data=str(space.model)),
        inputs=TransformInput(data=str(space.data), content_type=CONTENT_TYPE, split_type="Line"),
        strategy="MultiRecord", max_payload_mb=PAYLOAD_MB, instance_count=2, accept=CONTENT_TYPE,
    )
    pipeline = Pipeline(name="bench-transform", steps=[step])
    with fresh_home():
        started = time.perf_counter()
        execution = None
        with deadline(timeout, "the transform pipeline"):
            execution = pipeline.start()
            execution.wait()
        wall = time.perf_counter() - started
        steps = list(execution.list_steps())
        if plain(execution.status) != "Succeeded":
            raise BenchmarkError(failure_report(pipeline.name, execution, steps, None))
        record = steps[0]
        return (record.ended_at - record.started_at).total_seconds(), wall


def measure(space: Workspace, rounds: int, pipeline: bool, timeout: float, quiet_wait: float) -> Samples:
    """Every measurement ``rounds`` times, interleaved so changes in the machine's load spread over all."""
    samples = Samples()
    predictor = load_model(ModelSource(str(space.model)))
    body = space.data.read_bytes()
    for _ in range(2):  # untimed: the file cache, the warm server started and taught to import scikit-learn
        measure_transform(space, space.tiny, 2)
    for index in range(rounds):
        print(f"round {index + 1}/{rounds} ...", file=sys.stderr, flush=True)
        wait_for_quiet(quiet_wait)
        with ForeignLoad() as load:
            ceiling, predict_only = measure_ceiling(predictor, body)
            samples.ceiling.append(ceiling)
            samples.predict_only.append(predict_only)
            for workers in (1, 2):
                samples.full[workers].append(measure_transform(space, space.data, workers))
                samples.startup[workers].append(measure_transform(space, space.tiny, workers))
            samples.small.append(measure_transform(space, space.small, 2))
            spawned = {"FORGELINE_TRANSFORM_WARM_SECONDS": "0"}
            samples.spawned_full.append(measure_transform(space, space.data, 2, spawned))
            samples.spawned_startup.append(measure_transform(space, space.tiny, 2, spawned))
            samples.new_server.append(measure_transform(space, space.data, 2, new_server(space, index)))
        samples.foreign.append(load.share)
        if pipeline:
            step, wall = measure_pipeline(space, timeout)
            samples.pipeline_step.append(step)
            samples.pipeline_wall.append(wall)
    return samples


def new_server(space: Workspace, index: int) -> dict[str, str]:
    """Variables that give a job a warm server of its own (a folder more on its ``sys.path``), gone 1 s after it."""
    folder = space.scratch / f"new-server-{index}-{time.time_ns()}"
    folder.mkdir()
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "FORGELINE_TRANSFORM_WARM_SECONDS": "1"}


@dataclass(frozen=True)
class Figure:
    """One row of the table: a median and a best value, as rows/s or seconds."""

    name: str
    median: float
    best: float
    unit: str  # "rows/s" or "s"
    ratio: float | None = None  # rows/s against 2 × ceiling (median)
    note: str = ""


def rate(rows: int, seconds: list[float], pick: Callable[[list[float]], float]) -> float:
    return rows / pick(seconds)


def figures(samples: Samples, rows: int) -> list[Figure]:
    """Rows/s and seconds per measurement, with the ratio to 2 × the ceiling for the parallel runs."""
    median, best = statistics.median, min
    ceiling = rate(rows, samples.ceiling, median)
    ceiling_best = rate(rows, samples.ceiling, best)
    result = [
        Figure("Ceiling: input_fn → predict → output_fn, whole file, one process", ceiling, ceiling_best, "rows/s"),
        Figure("Bare model.predict on the parsed array", rate(rows, samples.predict_only, median),
               rate(rows, samples.predict_only, best), "rows/s"),
    ]
    for workers in (1, 2):
        full, startup = samples.full[workers], samples.startup[workers]
        after = [max(f - s, 1e-9) for f, s in zip(full, startup, strict=True)]
        # Best of a difference would pick the round whose start-up happened to be slow: best minus best instead.
        best_after = rows / max(best(full) - best(startup), 1e-9)
        result += [
            Figure(f"Transform job, {workers} worker(s), end to end", rate(rows, full, median),
                   rate(rows, full, best), "rows/s", rate(rows, full, median) / (2 * ceiling),
                   "goal ≥ 60 % of 2 × ceiling" if workers == 2 else ""),
            Figure(f"  start-up: the job, {workers} warm worker(s), the model loaded (2 one-row files)",
                   median(startup), best(startup), "s"),
            Figure(f"Transform job, {workers} worker(s), after start-up", rate(rows, after, median), best_after,
                   "rows/s", rate(rows, after, median) / (2 * ceiling),
                   "goal ≥ 80 % of 2 × ceiling" if workers == 2 else ""),
        ]
    spawned = samples.spawned_full
    result += [
        Figure("Transform job, 2 worker(s), 10,000 rows, end to end", median(samples.small), best(samples.small),
               "s", note=f"goal < {SMALL_GOAL_SECONDS:.0f} s"),
        Figure("Transform job, 2 worker(s), first job of a new server, end to end",
               rate(rows, samples.new_server, median), rate(rows, samples.new_server, best), "rows/s",
               rate(rows, samples.new_server, median) / (2 * ceiling),
               "the server starts; workers import scikit-learn"),
        Figure("Transform job, 2 spawned worker(s) (FORGELINE_TRANSFORM_WARM_SECONDS=0), end to end",
               rate(rows, spawned, median), rate(rows, spawned, best), "rows/s",
               rate(rows, spawned, median) / (2 * ceiling), "each worker imports scikit-learn, as before the server"),
        Figure("  start-up: spawn 2 worker(s) + load the model (2 one-row files)", median(samples.spawned_startup),
               best(samples.spawned_startup), "s"),
    ]
    if samples.pipeline_step:
        result += [
            Figure("TransformStep in a pipeline, 2 workers, step duration", rate(rows, samples.pipeline_step, median),
                   rate(rows, samples.pipeline_step, best), "rows/s",
                   rate(rows, samples.pipeline_step, median) / (2 * ceiling),
                   "includes staging the input and collecting the output"),
            Figure("  the same, start() → wait() returns", median(samples.pipeline_wall),
                   best(samples.pipeline_wall), "s"),
        ]
    return result


def cell(value: float, unit: str) -> str:
    return f"{value:,.0f}" if unit == "rows/s" else f"{value:.2f} s"


def table(rows_: list[Figure]) -> str:
    lines = ["| Measurement | Median | Best round | Median vs 2 × ceiling | Note |", "|---|---:|---:|---:|---|"]
    for f in rows_:
        ratio = "" if f.ratio is None else f"{f.ratio:.0%}"
        if f.ratio is not None and f.note.startswith("goal"):
            goal = END_TO_END_GOAL if "end to end" in f.name else GOAL
            ratio += " (met)" if f.ratio >= goal else " (**missed**)"
        elif f.note.startswith("goal <"):
            ratio = "(met)" if f.median < SMALL_GOAL_SECONDS else "(**missed**)"
        unit = " rows/s" if f.unit == "rows/s" else ""
        lines.append(f"| {f.name} | {cell(f.median, f.unit)}{unit} | {cell(f.best, f.unit)}{unit} | {ratio} "
                     f"| {f.note} |")
    return "\n".join(lines)


def section(samples: Samples, rows: int, rounds: int) -> str:
    """The README block: method, machine, table and what the figures say."""
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    foreign = statistics.median(samples.foreign)
    rows_ = figures(samples, rows)
    named = {f.name: f for f in rows_}
    steady = named["Transform job, 2 worker(s), after start-up"].ratio
    end_to_end = named["Transform job, 2 worker(s), end to end"].ratio
    startup = statistics.median(samples.startup[2])
    spawned_startup = statistics.median(samples.spawned_startup)
    spawned = named["Transform job, 2 spawned worker(s) (FORGELINE_TRANSFORM_WARM_SECONDS=0), end to end"].ratio
    small = statistics.median(samples.small)
    return "\n".join([
        SECTION_BEGIN,
        "## Batch transform (`bench_transform.py`)",
        "",
        f"Rows per second of a batch transform over a {rows:,}-row CSV (8 numeric columns, ~73 MB) with "
        "scikit-learn's LogisticRegression served by the default handlers (`model.joblib`, no entry point), "
        "against the ceiling: the same `input_fn` → `predict_fn` → `output_fn` over the whole file in one process, "
        "its bytes already in memory. The transform rows run the job's own process (`batch_transform.py`, as a "
        "TransformStep runs it, input already staged). *End to end* includes the job's process starting, its "
        "workers starting and loading the model; the workers are forked by the warm transform server, which an "
        "untimed job started and taught to import scikit-learn, unless `FORGELINE_TRANSFORM_WARM_SECONDS=0` "
        "(spawned workers, each importing scikit-learn, as every job did before the server); the *first job of a "
        "new server* starts one (a `PYTHONPATH` entry of its own) whose workers import scikit-learn themselves. "
        "*Start-up* is the same job on two one-row files (so that every worker starts); *after start-up* is rows / "
        "(end to end − start-up), its best column best end to end − best start-up. The pipeline row is one "
        "TransformStep with `instance_count=2` in a fresh `FORGELINE_HOME`: its step duration, staging the input "
        "and collecting the output included.",
        "",
        f"Measured {when} with forgeline {forgeline.__version__}, Python {platform.python_version()}, "
        f"{platform.system()} {platform.machine()}, {CORES} cores shared with other work: other processes used "
        f"{foreign:.0%} of them during the timed runs (median over rounds; each round first waited for a quiet "
        f"moment). Medians of {rounds} interleaved rounds, and the best round. Compare figures of one run only.",
        "",
        table(rows_),
        "",
        "Goals: 2 workers on 2 cores reach at least 80 % of 2 × the ceiling after start-up, and 60 % end to end; "
        f"a {SMALL_ROWS:,}-row job ends in under {SMALL_GOAL_SECONDS:.0f} s. After start-up (workers reading their "
        f"own byte ranges, batches of whole lines, ordered assembly): {verdict(steady, GOAL)}. End to end with warm "
        f"workers: {verdict(end_to_end, END_TO_END_GOAL)} (start-up {startup:.2f} s); with spawned workers "
        f"{spawned:.0%} (start-up {spawned_startup:.2f} s: each worker imports scikit-learn to unpickle the model). "
        f"{SMALL_ROWS:,} rows end to end: {small:.2f} s, goal {'met' if small < SMALL_GOAL_SECONDS else 'missed'}.",
        SECTION_END,
    ])


def verdict(ratio: float | None, goal: float) -> str:
    assert ratio is not None
    return f"{ratio:.0%} of 2 × ceiling, goal {'met' if ratio >= goal else 'missed'}"


def write_readme(text: str, readme: Path = README) -> None:
    """Replace the block between the transform markers, or append it."""
    write_section(text, SECTION_BEGIN, SECTION_END, readme=readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "forgeline-bench-transform",
                        help="where the CSV is generated once and reused")
    parser.add_argument("--no-pipeline", action="store_true", help="skip the whole-pipeline run")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--quiet-wait", type=float, default=30.0,
                        help="seconds to wait before each round for other processes to leave the cores idle")
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.rows < 2 or args.rounds < 1:
        parser.error("--rows must be at least 2 and --rounds at least 1")
    space = generate(args.rows, args.data_dir)
    try:
        samples = measure(space, args.rounds, not args.no_pipeline, args.timeout, args.quiet_wait)
    except BenchmarkError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(space.scratch, ignore_errors=True)
    text = section(samples, args.rows, args.rounds)
    print(table(figures(samples, args.rows)))
    print(f"other processes used {statistics.median(samples.foreign):.0%} of the {CORES} cores during the timed "
          f"runs (median; per round: {', '.join(f'{share:.0%}' for share in samples.foreign)})")
    if not args.no_readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
