"""Fixtures every test may use: its own FORGELINE_HOME, a user project folder, and the CLI as a real subprocess.

Nothing here is mocked: executions run through the detached orchestrator, jobs are real processes and the
metadata lives in a real SQLite database under the test's own FORGELINE_HOME.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository root: the quickstart's relative paths work from here."""

STOP_LEFTOVERS_SECONDS = 15.0


@pytest.fixture
def forgeline_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh FORGELINE_HOME (database, artifacts, logs, jobs) for this test only.

    On teardown, executions the test left running are stopped, so no orchestrator outlives its test.
    """
    home = tmp_path / "forgeline-home"
    monkeypatch.setenv("FORGELINE_HOME", str(home))
    monkeypatch.delenv("FORGELINE_DATABASE_URL", raising=False)
    monkeypatch.delenv("FORGELINE_ARTIFACT_ROOT", raising=False)
    yield home
    stop_leftover_executions(home)


def stop_leftover_executions(home: Path) -> None:
    """Ask every unfinished execution under ``home`` to stop; kill its orchestrator if it does not."""
    database = home / "forgeline.db"
    if not database.exists():
        return
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    store = SqlMetadataStore(f"sqlite:///{database}")
    try:
        unfinished = [r for r in store.list_executions(limit=10_000) if not r.status.is_terminal]
        for record in unfinished:
            store.request_stop(record.id)
        deadline = time.monotonic() + STOP_LEFTOVERS_SECONDS
        while unfinished and time.monotonic() < deadline:
            time.sleep(0.1)
            unfinished = [r for r in unfinished if not store.get_execution(r.id).status.is_terminal]
        for record in unfinished:
            pid = store.get_execution(record.id).orchestrator_pid
            warnings.warn(f"execution {record.id} did not stop within {STOP_LEFTOVERS_SECONDS} s; "
                          f"killing its orchestrator {pid}", stacklevel=1)
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
    except Exception as exc:  # noqa: BLE001 - a broken store is the test's failure, not the teardown's
        warnings.warn(f"could not check for leftover executions in {home}: {exc!r}", stacklevel=1)
    finally:
        store.close()


@dataclass(frozen=True, repr=False)
class CliRun:
    """What one `forgeline ...` process did."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        return (f"$ forgeline {' '.join(self.args)}\nexit {self.returncode}\n"
                f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}")


class Cli:
    """Runs `python -m forgeline.cli.main ...` as a real subprocess with the test's FORGELINE_* settings."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = dict(env)

    def __call__(self, *args: str, cwd: Path | str = REPO_ROOT, timeout: float = 180,
                 columns: int | None = 200, env: Mapping[str, str] | None = None,
                 unset: Sequence[str] = ()) -> CliRun:
        """Run the command to its end with ``env`` added and ``unset`` removed from the environment.

        ``columns`` is the terminal width rich sees (None: not set, as in a pipe).
        """
        full_env = {key: value for key, value in {**self.env, **(env or {})}.items() if key not in unset}
        full_env.pop("COLUMNS", None)
        full_env.pop("LINES", None)
        if columns is not None:
            full_env["COLUMNS"] = str(columns)
        process = subprocess.run(
            [sys.executable, "-m", "forgeline.cli.main", *args],
            cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return CliRun(tuple(args), process.returncode, process.stdout, process.stderr)


@pytest.fixture
def cli(forgeline_home: Path) -> Cli:
    """The forgeline CLI, run as a subprocess that sees this test's FORGELINE_HOME."""
    return Cli({**os.environ, "FORGELINE_HOME": str(forgeline_home)})


@dataclass(frozen=True)
class Finished:
    """An execution that has reached a terminal status, with its steps by name."""

    execution: Any
    status: str
    failure_reason: str | None
    steps: dict[str, Any]

    def statuses(self) -> dict[str, str]:
        """Step name -> status value."""
        return {name: run.status.value for name, run in self.steps.items()}


def wait_for_end(execution: Any, timeout: float = 90) -> Finished:
    """Wait for ``execution`` to end and snapshot it."""
    execution.wait(timeout=timeout)
    record = execution.record()
    return Finished(execution, record.status.value, record.failure_reason,
                    {run.name: run for run in execution.list_steps()})


def wait_until(predicate: Any, timeout: float = 30, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Project:
    """A user's project folder (the current directory while the test runs): pipeline files and scripts."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, text: str) -> Path:
        """Write a file (dedented) into the project and return its path."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def load(self, target: str = "pipeline.py") -> Any:
        """Import a pipeline file the way `forgeline run` does and return its Pipeline."""
        from forgeline.engine.loader import load_pipeline

        return load_pipeline(target)

    def run(self, target: str = "pipeline.py", parameters: Mapping[str, Any] | None = None,
            timeout: float = 90) -> Finished:
        """Start the pipeline of ``target`` from Python and wait for its end."""
        return wait_for_end(self.load(target).start(parameters=dict(parameters or {})), timeout)

    def store(self) -> Any:
        """The metadata store of the current settings."""
        from forgeline.config import Settings
        from forgeline.store.metadata.sql_store import SqlMetadataStore

        return SqlMetadataStore(Settings.from_env().database_url)

    def artifacts(self) -> Any:
        """The artifact store of the current settings."""
        from forgeline.config import Settings
        from forgeline.store.artifacts import ArtifactStore

        return ArtifactStore(Settings.from_env().artifact_root)

    def read_output(self, uri: str, filename: str) -> str:
        """Text of ``filename`` inside the stored output folder ``uri``."""
        return self.artifacts().read_bytes(f"{uri.rstrip('/')}/{filename}").decode()


@pytest.fixture
def project(tmp_path: Path, forgeline_home: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """An empty project folder, made the current directory (pipelines resolve code paths against it)."""
    root = tmp_path / "project"
    root.mkdir()
    monkeypatch.chdir(root)
    return Project(root)


@pytest.fixture
def quickstart(forgeline_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The quickstart pipeline, loaded with the repository root as the current directory."""
    monkeypatch.chdir(REPO_ROOT)
    from forgeline.engine.loader import load_pipeline

    return load_pipeline("examples/quickstart/pipeline.py")


@pytest.fixture(name="wait_for_end")
def wait_for_end_fixture() -> Any:
    """``wait_for_end(execution, timeout)``: wait for an execution to end and snapshot it."""
    return wait_for_end


@pytest.fixture(name="wait_until")
def wait_until_fixture() -> Any:
    """``wait_until(predicate, timeout, what=...)``: poll until truthy or fail the test."""
    return wait_until
