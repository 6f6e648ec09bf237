"""`python pipeline.py` through the warm launcher: real starter processes, a real launcher, real orchestrators.

Each test has a launcher folder of its own (FORGELINE_WARM_LAUNCHER_DIR) and stops what it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from forgeline.engine.warm_protocol import code_stamp, launcher_key

PIPELINE = """
    import json, os, sys
    from forgeline.errors import ForgelineError
    from forgeline.workflow import ParameterInteger, Pipeline, ProcessingStep, step


    def add(previous: int) -> int:
        return previous + 1


    start = ParameterInteger("Start", default_value=0)
    result = step(name="Add0")(add)(start)
    for index in range(1, 3):
        result = step(name=f"Add{index}")(add)(result)
    greet = ProcessingStep(name="Greet", code="greet.py", depends_on=[result])
    pipeline = Pipeline(name="warm", parameters=[start], steps=[result, greet])

    if __name__ == "__main__":
        overrides = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
        try:
            execution = pipeline.start(parameters=overrides)
        except ForgelineError as exc:
            print(json.dumps({"error": type(exc).__name__, "message": str(exc)}))
            raise SystemExit(3)
        status = execution.wait(timeout=600)
        engine_imported = "sqlalchemy" in sys.modules
        records = [m for m in ("forgeline.store.metadata.records", "forgeline.store.metadata.updates") if m in sys.modules]
        print(json.dumps({"status": status.value, "id": execution.id, "engine_imported": engine_imported,
                          "records_imported": records,
                          "work_dir": execution.record().work_dir, "result": execution.result("Add2")}))
"""

GREET = """
    import os
    from pathlib import Path

    Path(os.environ["OUT_FILE"]).write_text(os.environ["GREETING"])
"""


@pytest.fixture
def launchers(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A launcher folder of this test's own (short: a socket's path is limited); its launchers stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="flw-"))
    monkeypatch.setenv("FORGELINE_WARM_LAUNCHER_DIR", str(folder))
    monkeypatch.delenv("FORGELINE_WARM_LAUNCHER", raising=False)
    try:
        yield folder
    finally:
        for pid in launcher_processes(folder):
            stop(pid)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pipeline_project(tmp_path: Path, forgeline_home: Path) -> Path:
    user_project = tmp_path / "pipeline_project"
    user_project.mkdir()
    (user_project / "pipeline.py").write_text(textwrap.dedent(PIPELINE).lstrip())
    (user_project / "greet.py").write_text(textwrap.dedent(GREET).lstrip())
    return user_project


def run(pipeline_project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "pipeline.py", *args], cwd=pipeline_project, capture_output=True, text=True,
                          env={**os.environ, "GREETING": "hello", "OUT_FILE": str(pipeline_project / "greeting.txt"), **env},
                          timeout=600)


def report(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.stdout.strip(), done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def launcher_pids(folder: Path) -> list[int]:
    pids = []
    for pid_file in folder.glob("*.pid"):
        try:
            pids.append(int(pid_file.read_text()))
        except (OSError, ValueError):
            continue
    return pids


def launcher_processes(folder: Path) -> list[int]:
    """The running launchers whose socket is in ``folder`` (their command line names it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"forgeline.engine.warm_launcher" in command and any(
                part.startswith(os.fsencode(f"{folder}/")) for part in command) and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


def wait_until(condition: Any, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.05)


def test_python_pipeline_py_is_started_by_one_warm_launcher_and_never_imports_the_engine(pipeline_project, launchers):
    first = report(run(pipeline_project))
    [pid] = launcher_pids(launchers)
    second = report(run(pipeline_project, GREETING="hi again"))

    for done in (first, second):
        assert done["status"] == "Succeeded" and done["result"] == 3
        assert not done["engine_imported"]  # the launcher recorded, ran and the handle read it: no SQLAlchemy here
        assert done["records_imported"] == []  # nor any record but the execution's
    assert first["id"] != second["id"]
    assert launcher_pids(launchers) == [pid] and alive(pid)  # the second start found the first one's launcher
    # the execution ran in the starter's working folder and its job in the starter's environment, not the launcher's
    assert first["work_dir"] == second["work_dir"] == str(pipeline_project)
    assert (pipeline_project / "greeting.txt").read_text() == "hi again"


def database_files_held(pid: int, home: Path) -> list[str]:
    """The files under ``home`` that process ``pid`` holds open."""
    held = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(home)):
            held.append(target)
    return held


def test_a_store_deleted_between_starts_is_made_anew_and_the_launcher_never_holds_its_files(
        pipeline_project, launchers, forgeline_home):
    runs = [report(run(pipeline_project)) for _ in range(3)]  # the launcher keeps the store from the first on
    [pid] = launcher_pids(launchers)
    assert database_files_held(pid, forgeline_home) == []

    shutil.rmtree(forgeline_home)
    after = report(run(pipeline_project))

    assert [done["status"] for done in [*runs, after]] == ["Succeeded"] * 4
    assert launcher_pids(launchers) == [pid]  # the same launcher served the start on the new store
    listed = subprocess.run([sys.executable, "-m", "forgeline.cli.main", "executions", "list", "--json"],
                            capture_output=True, text=True, timeout=300, check=True)
    assert [row["id"] for row in json.loads(listed.stdout)] == [after["id"]]  # in the new file, and alone there
    assert database_files_held(pid, forgeline_home) == []


def test_the_starter_gets_the_error_it_would_get_without_a_launcher(pipeline_project, launchers):
    warm = run(pipeline_project, json.dumps({"Nope": 1}))
    cold = run(pipeline_project, json.dumps({"Nope": 1}), FORGELINE_WARM_LAUNCHER="0")

    assert warm.returncode == cold.returncode == 3, warm.stderr
    assert report(warm) == report(cold)
    assert "Nope" in report(warm)["message"]
    assert launcher_pids(launchers)  # it was the launcher that refused it


def test_forgeline_warm_launcher_0_starts_in_the_starting_process(pipeline_project, launchers):
    done = report(run(pipeline_project, FORGELINE_WARM_LAUNCHER="0"))

    assert done["status"] == "Succeeded" and done["result"] == 3
    assert done["engine_imported"]
    assert not launcher_pids(launchers) and not list(launchers.iterdir())


def test_an_idle_launcher_exits_and_takes_its_socket_with_it(pipeline_project, launchers):
    assert report(run(pipeline_project, FORGELINE_WARM_LAUNCHER_IDLE_SECONDS="1"))["status"] == "Succeeded"
    assert list(launchers.glob("*.log"))  # one was started

    wait_until(lambda: not launcher_processes(launchers), "the idle launcher exits")
    assert not list(launchers.glob("*.sock")) and not list(launchers.glob("*.pid"))
    done = report(run(pipeline_project))  # a new one serves the next start
    assert done["status"] == "Succeeded" and not done["engine_imported"]
    assert len(launcher_processes(launchers)) == 1


def test_a_killed_launcher_is_replaced_by_the_next_start(pipeline_project, launchers):
    assert report(run(pipeline_project))["status"] == "Succeeded"
    [pid] = launcher_pids(launchers)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not alive(pid), "the killed launcher is gone")
    assert list(launchers.glob("*.sock"))  # it left its socket behind

    done = report(run(pipeline_project))

    assert done["status"] == "Succeeded" and not done["engine_imported"]
    [new] = launcher_pids(launchers)
    assert new != pid and alive(new)


def test_starts_at_once_all_run(pipeline_project, launchers):
    assert report(run(pipeline_project))["status"] == "Succeeded"  # the launcher is up
    env = {**os.environ, "GREETING": "hello", "OUT_FILE": str(pipeline_project / "greeting.txt")}
    starters = [subprocess.Popen([sys.executable, "pipeline.py", json.dumps({"Start": n})], cwd=pipeline_project, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(4)]
    results = []
    for starter in starters:
        out, err = starter.communicate(timeout=600)
        results.append(json.loads(out.strip().splitlines()[-1]) if out.strip() else err)

    assert [r["status"] for r in results] == ["Succeeded"] * 4, results
    assert sorted(r["result"] for r in results) == [3, 4, 5, 6]
    assert len({r["id"] for r in results}) == 4


def test_a_folder_others_may_use_is_never_used(pipeline_project, launchers, tmp_path):
    shared = Path(tempfile.mkdtemp(prefix="flw-"))
    try:
        shared.chmod(0o777)
        done = report(run(pipeline_project, FORGELINE_WARM_LAUNCHER_DIR=str(shared)))

        assert done["status"] == "Succeeded" and done["engine_imported"]
        assert not list(shared.iterdir())
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_an_idle_time_that_is_not_a_number_is_named(pipeline_project, launchers):
    done = run(pipeline_project, FORGELINE_WARM_LAUNCHER_IDLE_SECONDS="soon")

    assert done.returncode == 3
    assert "FORGELINE_WARM_LAUNCHER_IDLE_SECONDS" in report(done)["message"]
    assert "'soon'" in report(done)["message"]


def test_the_key_changes_with_forgelines_code_and_the_interpreters_start_up_environment(tmp_path, monkeypatch):
    package = tmp_path / "package"
    (package / "sub").mkdir(parents=True)
    module = package / "sub" / "module.py"
    module.write_text("A = 1\n")
    stamp = code_stamp(str(package))
    os.utime(module, ns=(time.time_ns(), module.stat().st_mtime_ns + 10**9))
    edited = code_stamp(str(package))
    (package / "new.py").write_text("")
    added = code_stamp(str(package))
    assert len({stamp, edited, added}) == 3

    key = launcher_key()
    assert launcher_key() == key
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    assert launcher_key() != key
