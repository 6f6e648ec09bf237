"""Read-only, corrupt, emptied and foreign stores, and finding the store like git finds its repository.

A read-only FORGELINE_HOME is made for real: the CLI runs in a private mount namespace where the home folder
is bind-mounted read-only (``unshare --user --map-root-user --mount``), so even root cannot write it, as on a
read-only volume. Every command is the real CLI in a subprocess; every fault is a real file on disk.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command

from conftest import CliRun
from forgeline.engine.liveness import process_alive
from forgeline.store.metadata.connection import release_connections
from forgeline.store.metadata.migrate import HEAD_REVISION, alembic_config
from forgeline.store.metadata.updates import ExecutionUpdate

PIPELINE = """
    from forgeline.workflow import Model, Pipeline, ProcessingOutput, ProcessingStep, RegisterModel

    hello = ProcessingStep(name="Hello", code="hello.py", outputs=[ProcessingOutput(output_name="out", source="out")])
    register = RegisterModel(name="Register", model=Model(model_data=hello.properties.outputs["out"]),
                             model_package_group_name="greetings", approval_status="Approved",
                             content_types=["text/csv"], response_types=["text/csv"])
    pipeline = Pipeline(name="faults", steps=[hello, register])
"""

HELLO = """
    from pathlib import Path
    print("hello from the job")
    Path("out/hello.txt").write_text("hello")
"""

NOTHING_SET = ["FORGELINE_HOME", "FORGELINE_DATABASE_URL", "FORGELINE_ARTIFACT_ROOT"]


@pytest.fixture
def ran(project, cli, forgeline_home):
    """A store holding one succeeded execution (its id)."""
    project.write("hello.py", HELLO)
    project.write("pipeline.py", PIPELINE)
    run = cli("run", "pipeline.py", cwd=project.root)
    assert run.returncode == 0, run
    [record] = project.store().list_executions()
    return record.id


def one_line_error(run: CliRun, *fragments: str) -> str:
    assert run.returncode == 1, run
    assert "Traceback" not in run.output, run
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run
    for fragment in fragments:
        assert fragment in lines[0], (fragment, run)
    return lines[0]


def _read_only_mounts_work(folder: Path) -> bool:
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         'mount --bind -o ro "$1" "$1" && ! touch "$1/probe" 2>/dev/null', "sh", str(folder)],
        capture_output=True, text=True, timeout=30,
    )
    return probe.returncode == 0


def read_only_cli(home: Path, cwd: Path, *args: str) -> CliRun:
    """Run the CLI with ``home`` mounted read-only for it (and only for it)."""
    if shutil.which("unshare") is None or not _read_only_mounts_work(home):
        pytest.skip("needs `unshare --user --map-root-user --mount` (user and mount namespaces) to make a "
                    "folder read-only even for root")
    env = {**os.environ, "FORGELINE_HOME": str(home), "COLUMNS": "200"}
    process = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         'mount --bind -o ro "$1" "$1" && shift && exec "$@"', "sh", str(home),
         sys.executable, "-m", "forgeline.cli.main", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
    )
    return CliRun(tuple(args), process.returncode, process.stdout, process.stderr)


@pytest.mark.parametrize("log", ["checkpointed", "write-ahead log open"])
def test_read_commands_work_on_a_read_only_store(project, forgeline_home, ran, log):
    release_connections()  # the last connection checkpoints the log into the database file and removes it
    wal = forgeline_home / "forgeline.db-wal"
    if log == "checkpointed":
        assert not wal.exists()
    else:  # another process still has the store open: its newest writes are only in the log
        writer = project.store()
        writer.update_execution(ran, ExecutionUpdate(failure_reason="written last"))
        assert wal.stat().st_size > 0
    files_before = sorted(p.name for p in forgeline_home.iterdir())

    listed = read_only_cli(forgeline_home, project.root, "executions", "list")
    described = read_only_cli(forgeline_home, project.root, "executions", "describe", ran)
    logs = read_only_cli(forgeline_home, project.root, "logs", ran, "Hello")
    pipelines = read_only_cli(forgeline_home, project.root, "pipelines", "list")
    groups = read_only_cli(forgeline_home, project.root, "models", "groups")
    models = read_only_cli(forgeline_home, project.root, "models", "list", "greetings")

    assert listed.returncode == 0 and ran in listed.stdout and "Succeeded" in listed.stdout, listed
    assert described.returncode == 0 and "Hello" in described.stdout, described
    assert ("written last" in described.stdout) == (log != "checkpointed"), described
    assert logs.returncode == 0 and "hello from the job" in logs.stdout, logs
    assert pipelines.returncode == 0 and "faults" in pipelines.stdout, pipelines
    assert groups.returncode == 0 and "greetings" in groups.stdout, groups
    assert models.returncode == 0 and "Approved" in models.stdout, models
    assert sorted(p.name for p in forgeline_home.iterdir()) == files_before


def test_a_command_that_writes_to_a_read_only_store_says_read_only(project, forgeline_home, ran):
    run = read_only_cli(forgeline_home, project.root, "run", "pipeline.py")

    one_line_error(run, str(forgeline_home / "forgeline.db"), "read-only")


def test_a_read_only_store_that_needs_migrating_says_read_only(project, forgeline_home, ran):
    database = forgeline_home / "forgeline.db"
    command.downgrade(alembic_config(url=f"sqlite:///{database}"), "0003")

    listed = read_only_cli(forgeline_home, project.root, "executions", "list")

    one_line_error(listed, str(database), "read-only", "revision 0003", HEAD_REVISION)
    with sqlite3.connect(database) as connection:  # untouched: still the old schema
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == ("0003",)


@pytest.mark.parametrize("damage", ["header", "pages"])
def test_a_corrupt_database_is_named_with_what_to_do(project, cli, forgeline_home, ran, damage):
    database = forgeline_home / "forgeline.db"
    data = bytearray(database.read_bytes())
    if damage == "header":
        data[:100] = os.urandom(100)
    else:  # every page after the first: the schema is gone, the file still looks like SQLite
        data[4096:] = b"\xff" * (len(data) - 4096)
    database.write_bytes(bytes(data))
    size = database.stat().st_size

    for args in (["executions", "list"], ["run", "pipeline.py"]):
        line = one_line_error(cli(*args, cwd=project.root), str(database), "corrupt", "restore it from a backup",
                              "move it aside")
        assert f"mv {database} {database}.corrupt" in line
    assert database.stat().st_size == size


def test_an_emptied_database_beside_earlier_work_is_refused_not_started_over(project, cli, forgeline_home, ran):
    database = forgeline_home / "forgeline.db"
    for side in ("forgeline.db-wal", "forgeline.db-shm"):
        (forgeline_home / side).unlink(missing_ok=True)
    database.write_bytes(b"")

    for args in (["executions", "list"], ["run", "pipeline.py"]):
        one_line_error(cli(*args, cwd=project.root), str(database), "empty (0 bytes)", "artifacts", "logs",
                       "restore it from a backup", "move it aside")
    assert database.stat().st_size == 0

    database.rename(database.with_name("forgeline.db.empty"))  # what the message says to do
    fresh = cli("run", "pipeline.py", cwd=project.root)
    assert fresh.returncode == 0, fresh


def test_a_locked_store_is_waited_for_then_named_in_one_line(project, cli, forgeline_home, ran):
    database = forgeline_home / "forgeline.db"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in a long write transaction
    try:
        locked = cli("run", "pipeline.py", cwd=project.root, env={"FORGELINE_STORE_RETRY_SECONDS": "1"})
    finally:
        holder.rollback()
        holder.close()
    one_line_error(locked, str(database), "stayed unavailable for 1 s", "database is locked",
                   "FORGELINE_STORE_RETRY_SECONDS")
    assert [record.id for record in project.store().list_executions()] == [ran]  # nothing half-recorded
    again = cli("run", "pipeline.py", cwd=project.root, env={"FORGELINE_STORE_RETRY_SECONDS": "1"})
    assert again.returncode == 0, again


def test_a_retry_time_that_is_not_a_number_of_seconds_is_refused(project, cli, ran):
    refused = cli("executions", "list", cwd=project.root, env={"FORGELINE_STORE_RETRY_SECONDS": "soon"})
    one_line_error(refused, "FORGELINE_STORE_RETRY_SECONDS='soon' is not a positive number of seconds")


def test_a_database_of_a_newer_forgeline_is_refused_by_name_and_version(project, cli, forgeline_home, ran):
    database = forgeline_home / "forgeline.db"
    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '0099'")

    for args in (["executions", "list"], ["run", "pipeline.py"]):
        one_line_error(cli(*args, cwd=project.root), str(database), "'0099'", "newer forgeline",
                       f"newest known: {HEAD_REVISION}", "upgrade forgeline")
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT version_num FROM alembic_version").fetchone() == ("0099",)


def test_another_applications_database_is_not_taken_over(project, cli, tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    project.write("hello.py", HELLO)
    project.write("pipeline.py", PIPELINE)

    run = cli("run", "pipeline.py", cwd=project.root, env={"FORGELINE_DATABASE_URL": f"sqlite:///{other}"})

    one_line_error(run, str(other), "not a forgeline store", "invoices")
    with sqlite3.connect(other) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert tables == ["invoices"]


# -- finding the store: FORGELINE_HOME unset -------------------------------------------------------------------


@pytest.fixture
def no_store_above(tmp_path):
    """The test's folder has no .forgeline above it (else discovery would rightly find that one)."""
    above = [folder for folder in tmp_path.parents if (folder / ".forgeline").is_dir()]
    assert not above, f"a .forgeline folder above the test folder would be found: {above}"


def test_a_store_in_a_parent_folder_is_found_from_any_subfolder(project, cli, no_store_above):
    project.write("hello.py", HELLO)
    project.write("pipeline.py", PIPELINE)
    deep = project.root / "notebooks" / "week1"
    project.write("notebooks/week1/hello.py", HELLO)
    project.write("notebooks/week1/pipeline.py", PIPELINE)

    first = cli("run", "pipeline.py", cwd=project.root, unset=NOTHING_SET)
    assert first.returncode == 0, first
    listed = cli("executions", "list", cwd=deep, unset=NOTHING_SET)
    again = cli("run", "pipeline.py", cwd=deep, unset=NOTHING_SET)

    assert listed.returncode == 0 and "faults" in listed.stdout and "Succeeded" in listed.stdout, listed
    assert again.returncode == 0, again
    assert not (deep / ".forgeline").exists() and not (project.root / "notebooks" / ".forgeline").exists()
    assert len(cli("executions", "list", cwd=project.root, unset=NOTHING_SET).stdout.split("Succeeded")) == 3


def test_read_commands_never_create_a_store_and_say_where_they_looked(project, cli, no_store_above):
    project.write("hello.py", HELLO)
    project.write("pipeline.py", PIPELINE)
    sub = project.root / "sub"
    sub.mkdir()

    for args in (["executions", "list"], ["pipelines", "list"], ["models", "groups"]):
        one_line_error(cli(*args, cwd=sub, unset=NOTHING_SET), "no forgeline store found",
                       f"looked for a .forgeline folder in {sub} and every folder above it", "forgeline run")
    plan = cli("plan", "pipeline.py", cwd=project.root, unset=NOTHING_SET)
    assert plan.returncode == 0 and re.search(r"Hello\s+Processing\s+MISS", plan.stdout), plan
    assert not (sub / ".forgeline").exists() and not (project.root / ".forgeline").exists()

    run = cli("run", "pipeline.py", cwd=project.root, unset=NOTHING_SET)  # a command that writes creates it
    assert run.returncode == 0, run
    assert (project.root / ".forgeline" / "forgeline.db").is_file()


GATED = """
    import sys, time
    from pathlib import Path

    gate = Path(sys.argv[1])
    deadline = time.monotonic() + 300  # never reached in a passing test: the test opens the gate
    while not gate.exists():
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.02)
"""


def test_a_database_deleted_under_a_running_orchestrator_is_reported_not_recreated(project, cli, forgeline_home,
                                                                                   wait_until):
    gate = project.root / "open"
    project.write("gated.py", GATED)
    project.write("pipeline.py", f"""
        from forgeline.workflow import Pipeline, ProcessingStep

        first = ProcessingStep(name="First", code="gated.py", arguments=[{str(gate)!r}])
        second = ProcessingStep(name="Second", code="gated.py", arguments=[{str(gate)!r}], depends_on=[first])
        pipeline = Pipeline(name="deleted", steps=[first, second])
    """)
    started = cli("run", "pipeline.py", "--detach", cwd=project.root)
    assert started.returncode == 0, started
    store = project.store()
    [execution] = store.list_executions()
    wait_until(lambda: store.get_step_run(execution.id, "First").status.value == "Executing", timeout=60,
               what="the first step to run")
    orchestrator = wait_until(lambda: store.get_execution(execution.id).orchestrator_pid,
                              what="the orchestrator's pid")
    store.close()
    release_connections()
    database = forgeline_home / "forgeline.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    gate.write_text("")  # the first step ends: its orchestrator has something to record

    log = forgeline_home / "logs" / execution.id / "orchestrator.log"
    wait_until(lambda: log.exists() and f"{database} was deleted while this process was using it" in log.read_text(),
               timeout=60, what="the orchestrator to report the deleted database")
    wait_until(lambda: not process_alive(orchestrator), timeout=60, what="the orchestrator to exit")
    assert not database.exists()  # nothing recreated it: no record went into a new, empty store
    listed = cli("executions", "list", cwd=project.root)
    one_line_error(listed, f"no forgeline metadata database at {database}")
