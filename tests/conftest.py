"""Fixtures every test may use: its own FORGELINE_HOME, a user project folder, and the CLI as a real subprocess.

Nothing here is mocked: executions run through the detached orchestrator, jobs are real processes and the
metadata lives in a real SQLite database under the test's own FORGELINE_HOME.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from forked_cli import ForkServer

pytest_plugins = ["executors.ray_fixtures"]  # the Ray test cluster (ray_cluster, ray_env) for -m ray tests
REPO_ROOT = Path(__file__).resolve().parents[1]
"""The repository root: the quickstart's relative paths work from here."""

STOP_LEFTOVERS_SECONDS = 15.0

# This process has the engine imported, as a server or a notebook that started a pipeline has: its own
# pipeline.start() calls start executions themselves. A test's `python pipeline.py` hands its start to a warm
# launcher (engine/warm_launcher.py), as a user's does; this run's launchers keep to a folder of their own, exit
# two minutes after their last start, and are stopped when the run ends (pytest_sessionfinish).
import forgeline.engine.launch  # noqa: E402, F401

WARM_LAUNCHERS = tempfile.mkdtemp(prefix="fl-w-")
os.environ["FORGELINE_WARM_LAUNCHER_DIR"] = WARM_LAUNCHERS
os.environ["FORGELINE_WARM_LAUNCHER_IDLE_SECONDS"] = "120"


def pytest_sessionfinish() -> None:
    """Stop the warm launchers this run's processes started, and remove their folder."""
    for pid_file in Path(WARM_LAUNCHERS).glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
    shutil.rmtree(WARM_LAUNCHERS, ignore_errors=True)

# The slowest test files (see `make test`'s --durations), slowest first. They start first, and the workers take
# two tests at a time (--maxschedchunk 2), so that both workers end together instead of one running a long
# journey alone at the end. Any other file keeps its place after them.
SLOWEST_FIRST = (
    "tests/e2e/test_packaging.py",
    "tests/api/test_remote_cli.py",
    "tests/e2e/test_cli_journeys.py",
    "tests/api/test_schedules.py",
    "tests/api/test_alarms.py",
    "tests/cli/test_reports.py",
    "tests/e2e/test_ray_faults.py",
    "tests/api/test_triggers.py",
    "tests/api/test_auth.py",
    "tests/backends/test_quickstart_backends.py",
    "tests/e2e/test_packaging_server.py",
    "tests/e2e/test_sagemaker_import.py",
    "tests/examples/test_payments_example.py",
    "tests/e2e/test_caching.py",
    "tests/e2e/test_ray_packaging.py",
    "tests/e2e/test_concurrency.py",
    "tests/e2e/test_queue_launcher.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests of SLOWEST_FIRST's files first, in its order (a stable sort: the rest keep theirs)."""
    rank = {path: position for position, path in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(SLOWEST_FIRST)))


def with_ctrl_c(command: list[str]) -> list[str]:
    """``command`` run with Ctrl-C's SIGINT acted on, as in a user's terminal, whatever this process does with it.

    A test run started in the background (``make test &``, a CI runner's shell) inherits SIGINT ignored, and exec
    keeps it ignored: the command would then never see the Ctrl-C a test sends it.
    """
    reset = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-c", reset, *command]


def job_process_group(execution: Any, step: str, attempt: int = 1) -> int | None:
    """The process group a running job's executor noted in its job folder (None before the job started)."""
    from forgeline.config import Settings
    from forgeline.executors.local import JOB_PID_FILE

    job_dir = Settings.from_env().jobs_dir / execution.id / step / str(attempt)
    try:
        return int((job_dir / JOB_PID_FILE).read_text())
    except (OSError, ValueError):
        return None


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
    from forgeline.errors import StoreError
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    try:
        store = SqlMetadataStore(f"sqlite:///{database}", create=False)
    except StoreError:  # a test that damaged its store on purpose: nothing can run on it
        return
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
    """Runs `forgeline ...` as a real process with the test's FORGELINE_* settings.

    The process is forked from a server that has imported the CLI (tests/forked_cli.py), which saves the
    interpreter's start-up and imports on every command; ``fresh=True`` (or FORGELINE_TESTS_FRESH_CLI=1 for
    every command) runs `python -m forgeline.cli.main ...` from scratch instead.
    """

    def __init__(self, env: Mapping[str, str], fresh: bool = False) -> None:
        self.env = dict(env)
        self.fresh = fresh or os.environ.get("FORGELINE_TESTS_FRESH_CLI") == "1"

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
        if not self.fresh and ForkServer.shared().serves(full_env):
            process = ForkServer.shared().run(args, str(cwd), full_env, timeout)
        else:
            process = subprocess.run(
                [sys.executable, "-m", "forgeline.cli.main", *args],
                cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        return CliRun(tuple(args), process.returncode, process.stdout, process.stderr)

    def start(self, *args: str, cwd: Path | str = REPO_ROOT, env: Mapping[str, str] | None = None,
              stdout: Any = None, stderr: Any = None) -> Any:
        """Start the command without waiting: a ``subprocess.Popen`` or one of its kind (pid, poll, wait, signals).

        ``stdout`` and ``stderr`` are open files, ``stdout`` may be subprocess.PIPE (then read ``.stdout``) and
        ``stderr`` subprocess.STDOUT; None: /dev/null.
        """
        full_env = {**self.env, **(env or {})}
        if self.fresh or not ForkServer.shared().serves(full_env):
            return subprocess.Popen([sys.executable, "-m", "forgeline.cli.main", *args], cwd=cwd, env=full_env,
                                    stdin=subprocess.DEVNULL, stdout=stdout or subprocess.DEVNULL,
                                    stderr=stderr or subprocess.DEVNULL, text=True)
        read_end, write_end = os.pipe() if stdout == subprocess.PIPE else (None, None)
        with open(os.devnull, "wb") as null:
            out = write_end if write_end is not None else (stdout or null).fileno()
            err = out if stderr == subprocess.STDOUT else (stderr or null).fileno()
            try:
                process = ForkServer.shared().start(args, str(cwd), full_env, out, err)
            finally:
                if write_end is not None:
                    os.close(write_end)  # the child has its own copy: the reader sees the end when it exits
        if read_end is not None:
            process.stdout = open(read_end)  # text, as subprocess.Popen(text=True) gives it
        return process


@pytest.fixture
def cli(forgeline_home: Path) -> Cli:
    """The forgeline CLI, run as a subprocess that sees this test's FORGELINE_HOME."""
    return Cli({**os.environ, "FORGELINE_HOME": str(forgeline_home)})


@pytest.fixture
def fresh_cli(forgeline_home: Path) -> Cli:
    """Like ``cli``, but each command starts a new interpreter (`python -m forgeline.cli.main`) as a user's does."""
    return Cli({**os.environ, "FORGELINE_HOME": str(forgeline_home)}, fresh=True)


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


# -- real storage backends: a throwaway PostgreSQL server and an in-process S3 server (moto) --------------------

POSTGRES_START_ATTEMPTS = 3


@dataclass(frozen=True)
class _PostgresServer:
    """A running throwaway PostgreSQL server: its binaries, data folder, port and how to run its tools."""

    bin_dir: Path
    data_dir: Path
    port: int
    as_postgres_user: bool

    def run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server's owner (via su when we are root, directly otherwise)."""
        command = [str(self.bin_dir / tool), *args]
        if self.as_postgres_user:
            command = ["su", "postgres", "-c", shlex.join(command)]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=check,
                              stdin=subprocess.DEVNULL)

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database of this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


def _postgres_bin_dir() -> Path | None:
    """The newest PostgreSQL server binaries: Debian's /usr/lib/postgresql/<v>/bin, else initdb on PATH."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                      key=lambda p: [int(n) if n.isdigit() else 0 for n in p.parent.name.split(".")])
    for bin_dir in reversed(versions):
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
            return bin_dir
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _failure(what: str, process: subprocess.CalledProcessError) -> str:
    return f"{what} failed (exit {process.returncode}): {(process.stderr or '').strip() or process.stdout}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[_PostgresServer]:
    """A throwaway PostgreSQL server on 127.0.0.1 (a free port), trust auth, fsync off; stopped at the end.

    Started as in shared/RECIPES.md: initdb into a fresh temporary folder owned by the postgres user (we run
    the tools through ``su postgres`` when we are root, since PostgreSQL refuses to run as root), pg_ctl with
    ``-h 127.0.0.1 -p PORT -k DATA -F``, then createdb forgeline. Skips when PostgreSQL is not installed.
    """
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's 'postgresql' package "
                    "(`make test` does so when it runs as root with apt-get)")
    as_postgres_user = os.geteuid() == 0
    if as_postgres_user:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root but there is no 'postgres' user to run PostgreSQL as")
    # Not under pytest's tmp folder: as root that one is private (0700) and the postgres user could not enter it.
    data_dir = Path(tempfile.mkdtemp(prefix="forgeline-postgres-"))
    if as_postgres_user:
        os.chown(data_dir, owner.pw_uid, owner.pw_gid)
    server = _PostgresServer(bin_dir, data_dir, 0, as_postgres_user)
    try:
        try:
            server.run("initdb", "-D", str(data_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                       "--locale=C.UTF-8", "--no-sync")
        except subprocess.CalledProcessError as error:
            pytest.fail(_failure("initdb", error))
        for attempt in range(1, POSTGRES_START_ATTEMPTS + 1):
            server = _PostgresServer(bin_dir, data_dir, _free_port(), as_postgres_user)
            started = server.run("pg_ctl", "-D", str(data_dir), "-l", str(data_dir / "server.log"), "-w",
                                 "-o", f"-h 127.0.0.1 -p {server.port} -k {data_dir} -F", "start", check=False)
            if started.returncode == 0:
                break
            if attempt == POSTGRES_START_ATTEMPTS:  # the port may have been taken in between: try another
                log = (data_dir / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"pg_ctl start failed (exit {started.returncode}): {started.stderr}\n{log}")
        try:
            server.run("createdb", "-h", "127.0.0.1", "-p", str(server.port), "-U", "postgres", "forgeline")
            yield server
        finally:
            server.run("pg_ctl", "-D", str(data_dir), "-m", "fast", "-w", "stop", check=False)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: _PostgresServer) -> str:
    """``postgresql+psycopg://postgres@127.0.0.1:<port>/forgeline``: the session's throwaway server."""
    return postgres_server.url("forgeline")


@pytest.fixture
def postgres_database_url(postgres_server: _PostgresServer) -> Iterator[str]:
    """A new, empty database in the session's PostgreSQL server for this test only; dropped afterwards."""
    with _scratch_database(postgres_server, template=None) as url:
        yield url


@pytest.fixture(scope="session")
def _postgres_schema_template(postgres_server: _PostgresServer) -> str:
    """A database holding forgeline's schema at head and no data, to copy (CREATE DATABASE ... TEMPLATE)."""
    from forgeline.store.metadata.sql_store import SqlMetadataStore

    name = "forgeline_schema_template"
    postgres_server.run("createdb", "-h", "127.0.0.1", "-p", str(postgres_server.port), "-U", "postgres", name)
    SqlMetadataStore(postgres_server.url(name)).close()  # a template must have no open connections
    return name


@pytest.fixture
def postgres_migrated_database_url(postgres_server: _PostgresServer, _postgres_schema_template: str) -> Iterator[str]:
    """Like ``postgres_database_url`` but already at forgeline's schema head (a copy: no migration per test)."""
    with _scratch_database(postgres_server, template=_postgres_schema_template) as url:
        yield url


@contextlib.contextmanager
def _scratch_database(server: _PostgresServer, template: str | None) -> Iterator[str]:
    import psycopg

    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            # FORCE: an orchestrator or a pooled connection the test left behind must not keep it alive.
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of moto's S3 server, run in this process; AWS test credentials are set.

    Buckets live as long as the session: a test makes its own (see ``s3_bucket``).
    """
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e '.[dev]')")
    server_module = pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install -e '.[dev]')")
    with pytest.MonkeyPatch.context() as patch:
        for key, value in S3_ENV.items():
            patch.setenv(key, value)
        # A machine-wide profile or proxy must not redirect the test client away from loopback.
        patch.setenv("AWS_CONFIG_FILE", os.devnull)
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        patch.delenv("AWS_PROFILE", raising=False)
        patch.delenv("AWS_SESSION_TOKEN", raising=False)
        patch.setenv("NO_PROXY", ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1"])))
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not one line per request
        server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A new, empty bucket on the moto server for this test only (its name)."""
    import boto3

    name = f"forgeline-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name
