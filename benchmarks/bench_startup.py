"""Cold start: whole processes, from exec to exit, for the commands and pipeline files people run every day.

Each figure is a new Python process timed from outside (wall time until it exits), beside `python -c pass`
timed in the same run and, where installed, a Kedro import as a peer's floor. Every command runs once untimed,
then the measurements take turns for ``--runs`` rounds; the table gives medians. The stores the commands read
are made first: a FORGELINE_HOME holding 100 executions for `forgeline executions list`, and one project home
per pipeline file (so a whole run finds its database and, for the cached chain, every result already there).
`python pipeline.py` hands its start to a warm launcher (engine/warm_launcher.py) that the untimed run started,
as a user's second run finds the one their first started; one figure turns it off. The run's launchers keep to a
folder of its own, their CPU (and that of the orchestrators they fork) is counted, and they are stopped at the end.

    python benchmarks/bench_startup.py [--runs 7] [--no-readme]
    python benchmarks/bench_startup.py --baseline OLD/src        # before/after: another checkout's src, interleaved
    python benchmarks/bench_startup.py --importtime "forgeline --help"   # where a figure's imports go
"""

from __future__ import annotations

import argparse
import ctypes
import importlib.util
import itertools
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from readme_section import write_section

import forgeline

BEGIN = "<!-- startup:begin (written by bench_startup.py) -->"
END = "<!-- startup:end -->"
STORED_EXECUTIONS = 100
SETTINGS_ENV = ("FORGELINE_HOME", "FORGELINE_DATABASE_URL", "FORGELINE_ARTIFACT_ROOT")
BYTECODE_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
LAUNCHER_DIR_ENV = "FORGELINE_WARM_LAUNCHER_DIR"
LAUNCHER_IDLE_ENV = "FORGELINE_WARM_LAUNCHER_IDLE_SECONDS"
"""Dropped from the commands' environment: they run with compiled modules cached, as an installed package does
(without a cache every process compiles forgeline's own modules again, about 0.1 s)."""

CHAIN = """
    from forgeline.workflow import CacheConfig, Pipeline, step

    CACHE = {cache}


    def noop(previous: int) -> int:
        return previous + 1


    result = step(name="Fn00", cache_config=CACHE)(noop)(0)
    for index in range(1, 10):
        result = step(name=f"Fn{{index:02d}}", cache_config=CACHE)(noop)(result)
    pipeline = Pipeline(name="{name}", steps=[result])

    if __name__ == "__main__":
        status = pipeline.start().wait()
        raise SystemExit(0 if status.value == "Succeeded" else 1)
"""

SCRIPT_CHAIN = """
    from forgeline.workflow import Pipeline, ProcessingStep

    steps = []
    for index in range(10):
        steps.append(ProcessingStep(name=f"Noop{index:02d}", code="noop.py", depends_on=steps[-1:]))
    pipeline = Pipeline(name="startup-script-chain", steps=steps)

    if __name__ == "__main__":
        status = pipeline.start().wait()
        raise SystemExit(0 if status.value == "Succeeded" else 1)
"""

ONE_STEP = """
    from forgeline.workflow import Pipeline, ProcessingStep

    pipeline = Pipeline(name="startup-one-step", steps=[ProcessingStep(name="Noop", code="noop.py")])
"""


@dataclass
class Figure:
    """One whole-process measurement: what runs, where, and the goal it is held to."""

    label: str
    argv: list[str]
    cwd: Path
    home: Path | None = None
    goal: float | None = None
    note: str = ""
    source: Path | None = None  # another checkout's src folder, put first on the path (a baseline)
    extra_env: dict[str, str] = field(default_factory=dict)
    launcher_dir: Path | None = None  # the run's warm launchers (every tree's: see reap_descendants)
    pycache: Path | None = None  # where compiled modules are cached (the run's own folder, written by the untimed run)
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # user + system seconds of every process of the run

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV + BYTECODE_ENV}
        if self.pycache is not None:
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        if self.home is not None:
            env["FORGELINE_HOME"] = str(self.home)
        if self.source is not None:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.source), env.get("PYTHONPATH")]))
        if self.launcher_dir is not None:
            env[LAUNCHER_DIR_ENV] = str(self.launcher_dir)
            env[LAUNCHER_IDLE_ENV] = "3600"
        env.update(self.extra_env)
        return env

    def once(self, extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        """Run the command once; stop the benchmark if it fails (its time would mean nothing)."""
        done = subprocess.run([self.argv[0], *extra, *self.argv[1:]], cwd=self.cwd, env=self.env(),
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"{self.label} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def time_once(self) -> None:
        """Wall time until the command exits; CPU time of it and of every process it started, once all ended
        (a warm launcher's share included: what it and the orchestrators it forked used meanwhile)."""
        launchers = self.launcher_dir
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        before_launchers = launchers_cpu(launchers)
        start = time.perf_counter()
        self.once()
        self.times.append(time.perf_counter() - start)
        reap_descendants(launchers)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
                        + launchers_cpu(launchers) - before_launchers)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def adopt_orphans() -> bool:
    """Make this process the reaper of its detached descendants (orchestrators, workers), to count their CPU."""
    if not sys.platform.startswith("linux"):
        return False
    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0)


def reap_descendants(launchers: Path | None = None, timeout: float = 120.0) -> None:
    """Wait until every process the last command started has ended (an orchestrator outlives its caller).

    Warm launchers (their pids in ``launchers``) stay for the next command; what they forked for this one must end.
    """
    deadline = time.monotonic() + timeout
    me = os.getpid()
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            continue
        resident = set(launcher_pids(launchers))
        if all(child in resident for child, parent in parents().items() if parent == me or parent in resident):
            return
        time.sleep(0.01)
    resident = set(launcher_pids(launchers))
    left = [f"{pid} {Path(f'/proc/{pid}/cmdline').read_bytes().replace(bytes(1), b' ').decode(errors='replace')}"
            for pid, parent in parents().items() if (parent == me or parent in resident) and pid not in resident]
    raise SystemExit(f"processes started by a measured command still run after {timeout:.0f} s: {left}")


def launcher_pids(folder: Path | None) -> list[int]:
    """The warm launchers running for this run's commands (each writes its pid file once it listens)."""
    pids = []
    for pid_file in [] if folder is None else folder.glob("*.pid"):
        try:
            pids.append(int(pid_file.read_text()))
        except (OSError, ValueError):
            continue
    return pids


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def parents() -> dict[int, int]:
    """Every live process's parent."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := proc_stat(int(entry.name))) and fields[0] != "Z":
            found[int(entry.name)] = int(fields[1])
    return found


def launchers_cpu(folder: Path | None) -> float:
    """CPU seconds the warm launchers and their collected children used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in launcher_pids(folder):
        fields = proc_stat(pid)
        if fields:
            total += sum(int(value) for value in fields[11:15]) / ticks  # utime, stime, cutime, cstime
    return total


def stop_launchers(folder: Path) -> None:
    for pid in launcher_pids(folder):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


def forgeline_command(source: Path | None = None) -> list[str]:
    """The `forgeline` console script beside this interpreter (how users start it), else `python -m`; for an older
    checkout without ``cli/entry.py``, what its console script ran (``forgeline.cli.main:main``)."""
    if source is not None and not (source / "forgeline" / "cli" / "entry.py").exists():
        return [sys.executable, "-c", "import sys; from forgeline.cli.main import main; sys.exit(main())"]
    script = Path(sys.executable).with_name("forgeline")
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "forgeline.cli.main"]


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def project(root: Path, name: str, pipeline: str) -> Path:
    """A project folder with its pipeline file, a one-line script and its own .forgeline home."""
    folder = root / name
    write(folder, "pipeline.py", pipeline)
    write(folder, "noop.py", "pass\n")
    return folder


def store_executions(root: Path, count: int, source: Path | None, launchers: Path) -> Path:
    """A FORGELINE_HOME with ``count`` finished executions of a one-step pipeline, made through the Python API."""
    folder = project(root, "listed", ONE_STEP)
    filler = write(folder, "fill.py", f"""
        from pipeline import pipeline

        for _ in range({count}):
            assert pipeline.start().wait().value == "Succeeded"
    """)
    home = folder / ".forgeline"
    env = Figure("fill", [], folder, home=home, source=source, pycache=root / "pycache", launcher_dir=launchers).env()
    subprocess.run([sys.executable, str(filler)], cwd=folder, env=env, check=True, timeout=600)
    return home


def kedro_figure(root: Path) -> Figure | None:
    """A Kedro import (what its in-process runner pays before running anything), when Kedro is installed."""
    if importlib.util.find_spec("kedro") is None:
        return None
    return Figure("`python -c \"import kedro.pipeline\"` (peer's floor)",
                  [sys.executable, "-c", "import kedro.pipeline, kedro.runner"], root)


def figures(root: Path, launchers: Path, source: Path | None = None) -> list[Figure]:
    """Every measurement, with its stores made (``source``: the forgeline they run, when not this one;
    ``launchers``: the folder of the run's warm launchers)."""
    cli = forgeline_command(source)
    python = sys.executable
    home = store_executions(root, STORED_EXECUTIONS, source, launchers)
    chain = project(root, "chain", CHAIN.format(cache="None", name="startup-chain"))
    cached = project(root, "cached", CHAIN.format(cache='CacheConfig(enable_caching=True, expire_after="P30D")',
                                                  name="startup-cached"))
    scripts = project(root, "scripts", SCRIPT_CHAIN)
    one = project(root, "one", ONE_STEP)
    found = [
        Figure("`python -c pass`", [python, "-c", "pass"], root, note="baseline"),
        kedro_figure(root),
        Figure("`import forgeline.workflow`", [python, "-c", "import forgeline.workflow"], root),
        Figure("`forgeline --help`", [*cli, "--help"], root, goal=0.150),
        Figure(f"`forgeline executions list` ({STORED_EXECUTIONS} executions stored)",
               [*cli, "executions", "list"], root, home=home, goal=0.300),
        Figure("`forgeline run` of a 1-step no-op pipeline", [*cli, "run", "pipeline.py"], one,
               home=one / ".forgeline", note="one processing step (a one-line script)"),
        Figure("`python pipeline.py`, 10-step @step chain (start + wait)", [python, "pipeline.py"], chain,
               home=chain / ".forgeline", goal=0.250),
        Figure("the same, fully cached", [python, "pipeline.py"], cached, home=cached / ".forgeline", goal=0.200),
        Figure("10-step @step chain with no warm launcher (`FORGELINE_WARM_LAUNCHER=0`)", [python, "pipeline.py"],
               chain, home=chain / ".forgeline", note="the engine imported by the starting process",
               extra_env={"FORGELINE_WARM_LAUNCHER": "0"}),
        Figure("`python pipeline.py`, 10-step script chain (start + wait)", [python, "pipeline.py"], scripts,
               home=scripts / ".forgeline", goal=0.350),
    ]
    for figure in found:
        if figure is not None:
            figure.source = source
            figure.pycache = root / "pycache"
            figure.launcher_dir = launchers
    return [figure for figure in found if figure is not None]


def measure(found: Sequence[Figure], runs: int) -> None:
    """One untimed run of each (it makes the project's store and fills the cache), then ``runs`` rounds."""
    for figure in found:
        figure.once()
        reap_descendants(figure.launcher_dir)
    for _ in range(runs):
        for figure in found:
            figure.time_once()


def import_breakdown(figure: Figure, top: int = 25) -> str:
    """The ``top`` slowest imports (cumulative) of one run of ``figure``, from `python -X importtime`."""
    lines = figure.once(extra=["-X", "importtime"]).stderr.splitlines()
    rows = []
    for line in lines:
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s*)(\S+)", line)
        if match:
            rows.append((int(match.group(2)), int(match.group(1)), len(match.group(3)) // 2, match.group(4)))
    total = sum(cumulative for cumulative, _, depth, _ in rows if depth == 0)
    shown = [f"total top-level imports: {total / 1000:.1f} ms", "cumulative ms  self ms  module"]
    shown += [f"{c / 1000:13.1f}  {s / 1000:7.1f}  {'  ' * d}{m}"
              for c, s, d, m in sorted(rows, reverse=True)[:top]]
    return "\n".join(shown)


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def table(found: list[Figure], runs: int, before: list[Figure] | None = None) -> str:
    when = datetime.now(UTC).date().isoformat()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = [f"Measured {when} with forgeline {forgeline.__version__}, Python {platform.python_version()}, "
             f"{platform.system()} {platform.machine()}, {cores} cores; whole processes, median of {runs} runs "
             "after one untimed run of each" + (", before and after taking turns" if before else "") + "; CPU is "
             "user + system time of the command and every process it started (orchestrator, workers, jobs), "
             f"which a loaded machine inflates far less than wall time (load average {os.getloadavg()[0]:.1f} "
             "at the end).", ""]
    if before:
        lines += ["| Measurement | Before | After | CPU before | CPU after | Goal | Met |",
                  "|---|---:|---:|---:|---:|---|---|"]
    else:
        lines += ["| Measurement | Median | CPU | Goal | Met |", "|---|---:|---:|---|---|"]
    for index, figure in enumerate(found):
        goal = f"≤ {seconds(figure.goal)}" if figure.goal is not None else figure.note
        met = "" if figure.goal is None else ("met" if figure.median <= figure.goal else "not met")
        if before:
            was = before[index]
            lines.append(f"| {figure.label} | {seconds(was.median)} | {seconds(figure.median)} | "
                         f"{seconds(was.median_cpu)} | {seconds(figure.median_cpu)} | {goal} | {met} |")
        else:
            lines.append(f"| {figure.label} | {seconds(figure.median)} | {seconds(figure.median_cpu)} | {goal} "
                         f"| {met} |")
    if not any(figure.label.startswith("`python -c \"import kedro") for figure in found):
        lines += ["", "Kedro is not installed here, so no peer baseline was taken in this run."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-readme", action="store_true", help="print the table only")
    parser.add_argument("--baseline", type=Path, metavar="SRC",
                        help="also measure the forgeline in this src folder (an older checkout), taking turns")
    parser.add_argument("--importtime", metavar="LABEL",
                        help="print the slowest imports of the figure whose label contains LABEL, then stop")
    options = parser.parse_args()
    if not adopt_orphans():
        print("note: CPU figures count only the commands' own processes (no subreaper on this platform)")
    root = Path(tempfile.mkdtemp(prefix="forgeline-startup-"))
    try:
        launchers = root / "launchers"
        found = figures(root, launchers)
        before = figures(root / "baseline", launchers, options.baseline.resolve()) if options.baseline else []
        if options.importtime:
            for figure in found:
                if options.importtime in figure.label:
                    figure.once()  # the store exists and the cache is full, as when it is measured
                    print(f"{figure.label}\n{import_breakdown(figure)}\n")
            return
        measure([figure for pair in itertools.zip_longest(before, found) for figure in pair if figure is not None],
                options.runs)
        block = table(found, options.runs, before or None)
        print(block)
        if not options.no_readme:
            write_section(f"{BEGIN}\n{block}\n{END}", BEGIN, END, heading="## Cold start (`bench_startup.py`)")
    finally:
        stop_launchers(root / "launchers")
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
