"""The `forgeline` console script through a warm launcher: real script processes, a real launcher, real commands.

Ctrl-C and a closed terminal through a launcher are in tests/e2e/test_cli_journeys.py (the terminal tests run both
ways).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from forgeline.cli.warm_command import run_in_launcher

PIPELINE = """
    from forgeline.workflow import Pipeline, ProcessingStep

    pipeline = Pipeline(name="waits", steps=[ProcessingStep(name="Waits", code="waits.py")])
"""

WAITS = """
    import os, time
    from pathlib import Path

    Path(os.environ["STARTED_FILE"]).write_text("")
    while not Path(os.environ["RELEASE_FILE"]).exists():
        time.sleep(0.02)
"""

# The console script as installed (`forgeline = forgeline.cli.entry:main`), with a probe that says where it ran.
SCRIPT = "import sys; from forgeline.cli.entry import main; sys.argv[0] = 'forgeline'; main()"
PROBE = """
import sys
from forgeline.cli.warm_command import run_in_launcher
code = run_in_launcher(["forgeline", *sys.argv[1:]])
print("ran here" if code is None else f"ran in the launcher: exit {code}", file=sys.stderr)
"""
START_LAUNCHER = """
from forgeline.engine.warm_protocol import connect, launcher_place, start_launcher
place = launcher_place()
assert (connect(place) or start_launcher(place)) is not None, "no warm launcher came up"
"""


@pytest.fixture
def launchers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A launcher folder of this test's own (short: a socket's path is limited); its launchers stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="flw-"))
    monkeypatch.setenv("FORGELINE_WARM_LAUNCHER_DIR", str(folder))
    monkeypatch.delenv("FORGELINE_WARM_LAUNCHER", raising=False)
    monkeypatch.setenv("COLUMNS", "120")
    try:
        yield folder
    finally:
        for pid_file in folder.glob("*.pid"):
            try:
                os.kill(int(pid_file.read_text()), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def listening(launchers: Path, forgeline_home: Path) -> Path:
    """A launcher listening in ``launchers``."""
    started = subprocess.run([sys.executable, "-c", START_LAUNCHER], capture_output=True, text=True, timeout=300)
    assert started.returncode == 0, started.stderr
    return launchers


def forgeline(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300, stdin=subprocess.DEVNULL)


def where(*args: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)
    return done.stderr.strip().splitlines()[-1]


def test_commands_print_and_exit_in_the_launcher_as_they_do_in_their_own_process(project, listening):
    project.write("waits.py", "")
    project.write("pipeline.py", textwrap.dedent(PIPELINE))
    ran = forgeline("run", "pipeline.py", cwd=project.root)
    assert ran.returncode == 0, ran.stderr
    [record] = project.store().list_executions()

    for args in (("executions", "list"), ("executions", "describe", record.id), ("executions", "list", "--json"),
                 ("executions", "describe", "nope"), ("--help",), ("executions", "--bogus")):
        warm = forgeline(*args, cwd=project.root)
        here = forgeline(*args, cwd=project.root, FORGELINE_WARM_LAUNCHER="0")
        assert (warm.returncode, warm.stdout, warm.stderr) == (here.returncode, here.stdout, here.stderr), args
    assert forgeline("executions", "describe", "nope", cwd=project.root).returncode == 1
    assert where("executions", "list", cwd=project.root) == "ran in the launcher: exit 0"
    assert where("executions", "describe", "nope", cwd=project.root) == "ran in the launcher: exit 1"


def test_a_script_killed_outright_takes_its_command_with_it_and_the_execution_runs_on(
        project, listening, tmp_path, wait_until):
    project.write("waits.py", textwrap.dedent(WAITS))
    project.write("pipeline.py", textwrap.dedent(PIPELINE))
    started, release = tmp_path / "started", tmp_path / "release"
    script = subprocess.Popen([sys.executable, "-c", SCRIPT, "run", "pipeline.py"], cwd=project.root,
                              env={**os.environ, "STARTED_FILE": str(started), "RELEASE_FILE": str(release)},
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    [launcher] = [int(pid_file.read_text()) for pid_file in listening.glob("*.pid")]
    try:
        wait_until(started.exists, timeout=120, what="the step to start")
        [command] = children(launcher)  # the process running `run` (its orchestrator left the launcher's tree)
        script.kill()
        script.wait(timeout=60)
        wait_until(lambda: command not in children(launcher), timeout=60, what="the command to die with its script")
        store = project.store()
        [record] = store.list_executions()
        assert store.get_execution(record.id).status.value == "Executing"  # as when `run` itself is killed
    finally:
        release.write_text("")
    wait_until(lambda: store.get_execution(record.id).status.is_terminal, timeout=120, what="the execution's end")
    assert store.get_execution(record.id).status.value == "Succeeded"


def children(pid: int) -> list[int]:
    """The live child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def test_servers_and_a_switched_off_launcher_run_in_the_scripts_own_process(listening, monkeypatch):
    assert run_in_launcher(["forgeline", "server", "--help"]) is None
    assert run_in_launcher(["forgeline", "--auto-resume", "serve", "--help"]) is None
    monkeypatch.setenv("FORGELINE_WARM_LAUNCHER", "0")
    assert run_in_launcher(["forgeline", "--help"]) is None


def test_with_no_launcher_listening_the_command_runs_here_and_starts_one_for_the_next(
        project, launchers, forgeline_home, wait_until):
    assert where("--help", cwd=project.root) == "ran here"

    wait_until(lambda: list(launchers.glob("*.pid")), timeout=300, what="a launcher to listen")
    assert where("--help", cwd=project.root) == "ran in the launcher: exit 0"


def test_an_idle_time_that_is_not_a_number_is_named(project, launchers, forgeline_home):
    done = forgeline("--help", cwd=project.root, FORGELINE_WARM_LAUNCHER_IDLE_SECONDS="later")

    assert done.returncode == 1
    assert "FORGELINE_WARM_LAUNCHER_IDLE_SECONDS" in done.stderr and "'later'" in done.stderr
    assert not list(launchers.iterdir())
