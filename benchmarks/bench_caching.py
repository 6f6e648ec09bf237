"""Caching: what a fully cached rerun costs, what one cache check costs, and how fast inputs are fingerprinted.

1. The quickstart with caching enabled on every job step (a variant built in a temporary folder from the
   quickstart's own definition; examples/quickstart/pipeline.py is not touched): first run against the fully
   cached rerun, through the Python API and through `forgeline run`.
2. Cache checks: a chain of no-op script steps, each reading the previous one's output, run once and then
   rerun fully cached, at 10 and 50 steps; per cached step = (T50 - T10) / 40. Also compute_cache_key and
   the cache lookup timed in-process for one step.
3. Fingerprints of one large file: forgeline's first fingerprint (BLAKE3, every core) against `sha256sum`
   (and `b3sum` when installed) on the same file, then forgeline's fingerprint of the unchanged file from a
   fresh process state (new store connection: what the next orchestrator does), which must not read it.

Every execution runs in a fresh temporary FORGELINE_HOME. Prints a table and rewrites the caching section
of benchmarks/README.md (between its own markers).

    python benchmarks/bench_caching.py [--runs 3] [--size-mb 1024] [--no-readme]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
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

import forgeline
from forgeline.workflow import CacheConfig, Pipeline, ProcessingInput, ProcessingOutput, ProcessingStep

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "examples" / "quickstart" / "pipeline.py"
README = Path(__file__).with_name("README.md")
BEGIN = "<!-- caching:begin (written by bench_caching.py) -->"
END = "<!-- caching:end -->"
SETTINGS_ENV = ("FORGELINE_HOME", "FORGELINE_DATABASE_URL", "FORGELINE_ARTIFACT_ROOT")
JOB_KINDS = ("Processing", "Training", "Function")
LONG = 50
CACHED = CacheConfig(enable_caching=True)

SECTION_INTRO = """## Caching (`bench_caching.py`)

What reusing results costs, and what it costs to find out that a result can be reused.

- **Quickstart, cached rerun**: `examples/quickstart/pipeline.py` with `CacheConfig(enable_caching=True)` on
  every job step (a variant built from its definition in a temporary folder), first run against a second,
  fully cached run in the same `FORGELINE_HOME`; through `pipeline.start()`/`wait()` and through the whole
  `forgeline run` command (process start and imports included). `Summarize` takes the execution id as an
  argument, so it runs every time: every other job step is a hit.
- **Cache check per step**: 50 no-op script steps chained by data, run once, then rerun fully cached; the
  median gap between the starts of consecutive cached steps is one whole check (resolve the step, build its
  job spec, compute its key, look it up, record the hit). The in-process rows time `compute_cache_key` (code
  closure, input fingerprint through the content index) and `StepCache.lookup` (SQL query, artifacts still
  there) for one step with one small input.
- **Fingerprints**: one file of random bytes; the first fingerprint hashes it (BLAKE3, memory-mapped, every
  core; the file is in the page cache, as it is right after being written), `sha256sum` and `b3sum` read the
  same file for comparison; the unchanged fingerprint opens a new metadata store connection and finds the
  file's (path, size, mtime) in the content index, without reading it.

Goals: a fully cached quickstart rerun in well under a second; a cache check in milliseconds per step; an
unchanged input fingerprinted in < 10 ms whatever its size; a first fingerprint near the hash or disk limit.
"""


class BenchmarkError(Exception):
    """An execution did not do what the measurement assumes, so its timing means nothing."""


@contextmanager
def fresh_home() -> Iterator[Path]:
    """Point FORGELINE_HOME at a new temporary folder (and nothing else) for the duration."""
    saved = {name: os.environ.get(name) for name in SETTINGS_ENV}
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-cache-", ignore_cleanup_errors=True) as home:
        for name in SETTINGS_ENV:
            os.environ.pop(name, None)
        os.environ["FORGELINE_HOME"] = home
        try:
            yield Path(home)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@contextmanager
def working_dir(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = action()
    return time.perf_counter() - start, value


def run_to_end(pipeline: Pipeline, timeout: float) -> tuple[float, Any]:
    """Start, wait, and return (seconds, execution); raise unless it succeeded."""
    seconds, execution = timed(lambda: _start_and_wait(pipeline, timeout))
    if execution.status.value != "Succeeded":
        failed = [f"{s.name}: {s.failure_reason}" for s in execution.list_steps() if s.failure_reason]
        raise BenchmarkError(f"{pipeline.name} {execution.id} {execution.status.value}: "
                             f"{execution.failure_reason}; {failed}")
    return seconds, execution


def _start_and_wait(pipeline: Pipeline, timeout: float) -> Any:
    execution = pipeline.start()
    try:
        execution.wait(timeout=timeout)
    except TimeoutError:
        with contextlib.suppress(Exception):
            execution.stop()
        raise BenchmarkError(f"{pipeline.name}: no result after {timeout:.0f} s") from None
    return execution


def job_steps(execution: Any) -> list[Any]:
    return [s for s in execution.list_steps() if s.kind in JOB_KINDS]


# ---------------------------------------------------------------------------------------------- quickstart


def with_caching(request: Any) -> Any:
    """A definition document with caching enabled on every job step, wherever it is nested."""
    if isinstance(request, dict):
        copied = {key: with_caching(value) for key, value in request.items()}
        if copied.get("Type") in JOB_KINDS and "Name" in copied:
            copied["CacheConfig"] = CACHED.to_request()
        return copied
    if isinstance(request, list):
        return [with_caching(item) for item in request]
    return request


def cached_quickstart_file(folder: Path) -> Path:
    """Write the cached variant of the quickstart (definition JSON plus a pipeline file loading it) into folder."""
    from forgeline.engine.loader import load_pipeline

    with working_dir(REPO):
        definition = with_caching(load_pipeline(str(QUICKSTART)).to_request())
    definition["Name"] = "quickstart-cached"
    (folder / "definition.json").write_text(json.dumps(definition, indent=1))
    pipeline_file = folder / "pipeline.py"
    pipeline_file.write_text(
        "import json\nfrom pathlib import Path\nfrom forgeline.workflow import Pipeline\n\n"
        "pipeline = Pipeline.from_definition(json.loads(Path(__file__).with_name('definition.json').read_text()))\n"
    )
    return pipeline_file


def measure_quickstart(runs: int, timeout: float) -> dict[str, float]:
    from forgeline.engine.loader import load_pipeline

    first, cached, cli_cached, hit_steps, job_count = [], [], [], set(), set()
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-quickstart-") as folder:
        pipeline_file = cached_quickstart_file(Path(folder))
        for index in range(runs + 1):  # the first round is an untimed warm-up of this process' imports
            with fresh_home() as home, working_dir(REPO):
                pipeline = load_pipeline(str(pipeline_file))
                t_first, _ = run_to_end(pipeline, timeout)
                t_cached, execution = run_to_end(pipeline, timeout)
                steps = job_steps(execution)
                misses = [s.name for s in steps if not s.cache_hit]
                if misses != ["Summarize"]:
                    raise BenchmarkError(f"cached quickstart rerun: expected only Summarize to run, ran {misses}")
                env = {**os.environ, "FORGELINE_HOME": str(home)}
                command = [sys.executable, "-m", "forgeline.cli.main", "run", str(pipeline_file)]
                t_cli, done = timed(lambda env=env, command=command: subprocess.run(
                    command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout))
                if done.returncode != 0:
                    raise BenchmarkError(f"forgeline run (cached) failed:\n{done.stdout}\n{done.stderr}")
                if index:
                    first.append(t_first)
                    cached.append(t_cached)
                    cli_cached.append(t_cli)
                    hit_steps = {s.name for s in steps if s.cache_hit}
                    job_count = {s.name for s in steps}
    return {"first": statistics.median(first), "cached": statistics.median(cached),
            "cli_cached": statistics.median(cli_cached), "hits": len(hit_steps), "jobs": len(job_count)}


# ------------------------------------------------------------------------------------------- cache checks


def chain(length: int, folder: Path) -> Pipeline:
    """No-op script steps, each reading the previous step's output (a few bytes) and writing its own.

    Each step passes its index as an argument: steps with the same code, arguments and input content have
    the same key, and the first would otherwise serve all the others from the cache on the first run.
    """
    script = folder / "step.py"
    script.write_text("import sys\nopen('out/v.txt', 'w').write(open('in/v.txt').read() + sys.argv[1])\n")
    seed = folder / "seed"
    seed.mkdir(exist_ok=True)
    (seed / "v.txt").write_text("0")
    steps: list[ProcessingStep] = []
    for i in range(length):
        source: Any = str(seed) if not steps else steps[-1].properties.outputs["out"]
        steps.append(ProcessingStep(name=f"s{i:03d}", code=str(script), cache_config=CACHED, arguments=[str(i)],
                                    inputs=[ProcessingInput(source=source, destination="in")],
                                    outputs=[ProcessingOutput(output_name="out", source="out")]))
    return Pipeline(name=f"cached-chain-{length}", steps=steps)


def measure_chains(runs: int, timeout: float) -> dict[str, float]:
    """A 50-step chain run once, then rerun fully cached; a cache check is the gap between cached steps."""
    times: dict[str, list[float]] = {"first": [], "cached": [], "check": []}
    with tempfile.TemporaryDirectory(prefix="forgeline-bench-chain-") as folder:
        for index in range(runs + 1):
            with fresh_home():
                pipeline = chain(LONG, Path(folder))
                t_first, first = run_to_end(pipeline, timeout)
                if any(s.cache_hit or s.attempts != 1 for s in job_steps(first)):
                    raise BenchmarkError("the first run of the chain did not run every step")
                t_cached, execution = run_to_end(pipeline, timeout)
                steps = sorted(job_steps(execution), key=lambda s: s.started_at)
                if not all(s.cache_hit for s in steps):
                    raise BenchmarkError("the rerun of the chain was not all cache hits")
                if index:
                    times["first"].append(t_first)
                    times["cached"].append(t_cached)
                    # each gap is one whole cache check: resolve, build the spec, key, lookup, record the hit
                    times["check"].append(statistics.median(
                        (b.started_at - a.started_at).total_seconds() for a, b in zip(steps, steps[1:])))
    return {name: statistics.median(values) for name, values in times.items()}


def measure_key_computation(samples: int = 200) -> dict[str, float]:
    """compute_cache_key and StepCache.lookup for one step, in-process, with the store as content index."""
    from forgeline.config import Settings
    from forgeline.engine.caching import StepCache, compute_cache_key
    from forgeline.engine.fingerprint import Fingerprinter
    from forgeline.engine.jobspecs import JobContext, build_job_spec
    from forgeline.engine.resolve import ResolutionContext
    from forgeline.store.artifacts import ArtifactStore
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    with tempfile.TemporaryDirectory(prefix="forgeline-bench-key-") as folder, working_dir(Path(folder)):
        root = Path(folder)
        (root / "helper.py").write_text("def f(x):\n    return x\n")
        (root / "job.py").write_text("import json, helper\nprint(helper.f(json.dumps(1)))\n")
        (root / "data.csv").write_text("a,b\n" * 1000)
        old = time.time_ns() - 3600 * 10**9  # an input that was not just written (the content index keeps it)
        for name in ("helper.py", "job.py", "data.csv"):
            os.utime(root / name, ns=(old, old))
        settings = Settings.from_env({"FORGELINE_HOME": str(root / "home")})
        store = SqlMetadataStore(settings.database_url)
        artifacts = ArtifactStore(settings.artifact_root)
        step = ProcessingStep(name="Job", code="job.py", cache_config=CACHED, arguments=["--x", "1"],
                              inputs=[ProcessingInput(source="data.csv", destination="in")],
                              outputs=[ProcessingOutput(output_name="out", source="out")])
        resolution = ResolutionContext("bench", "bench", datetime.now(UTC), {})
        spec = build_job_spec(step, JobContext("bench", 1, settings, artifacts, resolution, str(root)))
        fingerprinter = Fingerprinter(store)
        key = compute_cache_key(step, spec, {}, str(root), fingerprinter)
        (root / "out").mkdir()
        uri = artifacts.put(str(root / "out"), artifacts.uri("executions", "bench", "Job", "out"))
        cache = StepCache(store, artifacts)
        cache.record(key, "bench", step, "bench", {"out": uri}, {})
        key_times, lookup_times = [], []
        for _ in range(samples):
            seconds, again = timed(lambda: compute_cache_key(step, spec, {}, str(root), Fingerprinter(store)))
            key_times.append(seconds)
            seconds, entry = timed(lambda again=again: cache.lookup(again, None))
            lookup_times.append(seconds)
            if entry is None:
                raise BenchmarkError("the recorded cache entry was not found")
        store.close()
    return {"key": statistics.median(key_times), "lookup": statistics.median(lookup_times)}


# ------------------------------------------------------------------------------------------- fingerprints


def write_random_file(path: Path, size_mb: int) -> None:
    chunk = 64 * 1024 * 1024
    remaining = size_mb * 1024 * 1024
    with open(path, "wb") as handle:
        while remaining:
            data = os.urandom(min(chunk, remaining))
            handle.write(data)
            remaining -= len(data)


def command_seconds(command: list[str]) -> float | None:
    if shutil.which(command[0]) is None:
        return None
    seconds, done = timed(lambda: subprocess.run(command, capture_output=True, check=False))
    if done.returncode != 0:
        raise BenchmarkError(f"{' '.join(command)} failed: {done.stderr.decode(errors='replace')}")
    return seconds


def measure_fingerprints(size_mb: int, runs: int) -> dict[str, Any]:
    import blake3

    from forgeline.engine.fingerprint import RACY_NS, Fingerprinter
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    with tempfile.TemporaryDirectory(prefix="forgeline-bench-fp-", dir=str(REPO)) as folder:
        big = Path(folder) / "big.bin"
        write_random_file(big, size_mb)
        written = time.monotonic()
        sha = [command_seconds(["sha256sum", str(big)]) for _ in range(runs)]
        b3 = [command_seconds(["b3sum", str(big)]) for _ in range(runs)]
        one_thread = [timed(lambda: blake3.blake3(max_threads=1).update_mmap(str(big)).hexdigest())[0]
                      for _ in range(runs)]
        time.sleep(max(0.0, RACY_NS / 1e9 + 0.1 - (time.monotonic() - written)))  # not "just written" any more
        url = f"sqlite:///{Path(folder) / 'index.db'}"
        firsts, unchanged = [], []
        for _ in range(runs):
            store = SqlMetadataStore(url)
            store._engine.dispose()  # noqa: SLF001 - a clean connection pool, like a new orchestrator
            with store._engine.begin() as connection:  # noqa: SLF001 - forget what the index knows
                connection.exec_driver_sql("DELETE FROM content_index")
            seconds, digest = timed(lambda store=store: Fingerprinter(store).fingerprint(str(big)))
            firsts.append(seconds)
            store.close()
            for _ in range(5):
                fresh = SqlMetadataStore(url)
                seconds, again = timed(lambda fresh=fresh: Fingerprinter(fresh).fingerprint(str(big)))
                fresh.close()
                if again != digest:
                    raise BenchmarkError("the unchanged file got another digest")
                unchanged.append(seconds)
    mb = size_mb * 1024 * 1024 / 1e6
    result: dict[str, Any] = {"size_mb": size_mb, "first": statistics.median(firsts),
                              "unchanged": statistics.median(unchanged), "mb": mb,
                              "one_thread": statistics.median(one_thread),
                              "sha256sum": statistics.median(s for s in sha if s is not None) if sha[0] else None,
                              "b3sum": statistics.median(s for s in b3 if s is not None) if b3[0] else None}
    return result


# ------------------------------------------------------------------------------------------------ report


def ms(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds * 1000:.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.3f} s"


def throughput(mb: float, seconds: float | None) -> str:
    return "not installed" if seconds is None else f"{mb / seconds / 1000:.2f} GB/s ({secs(seconds)})"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def table(q: dict[str, float], c: dict[str, float], k: dict[str, float], f: dict[str, Any]) -> str:
    rows = [
        ("Quickstart, first run (API, start → wait)", secs(q["first"]), "", ""),
        (f"Quickstart, cached rerun (API; {q['hits']:.0f} of {q['jobs']:.0f} job steps hit)", secs(q["cached"]),
         "< 1 s", verdict(q["cached"] < 1.0)),
        ("Quickstart, first ÷ cached rerun", f"{q['first'] / q['cached']:.1f}×", "", ""),
        ("Quickstart, cached rerun with `forgeline run` (whole command)", secs(q["cli_cached"]), "", ""),
        (f"Chain of {LONG} no-op steps, first run", secs(c["first"]), "", ""),
        (f"Chain of {LONG} no-op steps, cached rerun", secs(c["cached"]), "", ""),
        ("Cache check per step (median gap between cached steps of the chain)", ms(c["check"]),
         "milliseconds", verdict(c["check"] < 0.02)),
        ("`compute_cache_key`, one step, one input (in-process)", ms(k["key"]), "", ""),
        ("`StepCache.lookup`, one key (in-process)", ms(k["lookup"]), "", ""),
        (f"Fingerprint {f['size_mb']} MiB, first time (forgeline, BLAKE3)", throughput(f["mb"], f["first"]),
         "near the hash limit", ""),
        (f"BLAKE3 on one thread (Python `blake3`), same {f['size_mb']} MiB", throughput(f["mb"], f["one_thread"]),
         "", ""),
        (f"`sha256sum` on the same {f['size_mb']} MiB", throughput(f["mb"], f["sha256sum"]), "", ""),
        (f"`b3sum` on the same {f['size_mb']} MiB", throughput(f["mb"], f["b3sum"]), "", ""),
        (f"Fingerprint {f['size_mb']} MiB, unchanged (content index)", ms(f["unchanged"]), "< 10 ms",
         verdict(f["unchanged"] < 0.010)),
    ]
    lines = ["| Measurement | Median | Goal | Met |", "|---|---:|---|---|"]
    lines += [f"| {what} | {value} | {goal} | {met} |" for what, value, goal, met in rows]
    return "\n".join(lines)


def section(body: str, runs: int) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    return "\n".join([
        BEGIN,
        f"Measured {when} with forgeline {forgeline.__version__}, Python {platform.python_version()}, {machine}; "
        f"median of {runs} runs after one untimed warm-up.",
        "",
        body,
        END,
    ])


def write_readme(block: str, readme: Path = README) -> None:
    """Replace the text between this benchmark's markers, or append its section with them."""
    write_section(block, BEGIN, END, SECTION_INTRO + "\n### Figures", readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="repetitions of each measurement (median reported)")
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the fingerprinted file in MiB")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before an execution counts as hung")
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    try:
        print("quickstart ...", file=sys.stderr, flush=True)
        quickstart = measure_quickstart(args.runs, args.timeout)
        print("cached chains ...", file=sys.stderr, flush=True)
        chains = measure_chains(args.runs, args.timeout)
        keys = measure_key_computation()
        print("fingerprints ...", file=sys.stderr, flush=True)
        fingerprints = measure_fingerprints(args.size_mb, args.runs)
    except BenchmarkError as exc:
        print(f"benchmark aborted: {exc}", file=sys.stderr)
        return 1
    body = table(quickstart, chains, keys, fingerprints)
    print(body)
    if not args.no_readme:
        write_readme(section(body, args.runs))
        print("\nfigures written to benchmarks/README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
