"""`python pipeline.py`: the @step worker is forked from the starting process and adopted by its orchestrator.

Each pipeline runs as a user runs it, in a process of its own; the step reports what its worker process is
(its command line and parent tell a worker forked from the starter from one the orchestrator spawned) and
what state it is in, which must be a spawned worker's in both cases.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

PROBE_PIPELINE = """
    import json, os, signal, sys, threading
    from pathlib import Path

    import helper
    from forgeline.workflow import Pipeline, step

    VERSION = "as defined"


    def cmdline(pid):
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\\0")[:-1]


    @step(name="Probe")
    def probe() -> dict:
        fds = {}
        for name in os.listdir("/proc/self/fd"):
            try:
                fds[name] = os.readlink(f"/proc/self/fd/{name}")
            except OSError:
                pass
        print("probe says hello")
        print("probe complains", file=sys.stderr)
        return {
            "pid": os.getpid(), "sid": os.getsid(0), "pgid": os.getpgid(0), "ppid": os.getppid(),
            "cmdline": cmdline(os.getpid()), "parent_cmdline": cmdline(os.getppid()),
            "worker_env": os.environ.get("FORGELINE_WORKER"), "unbuffered": os.environ.get("PYTHONUNBUFFERED"),
            "home": os.environ.get("FORGELINE_HOME"), "fds": sorted(fds.values()), "stdin": fds.get("0"),
            "sigint_default": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
            "sigterm_default": signal.getsignal(signal.SIGTERM) == signal.SIG_DFL,
            "main_is_pipeline": hasattr(sys.modules["__main__"], "pipeline"),
            "argv0": os.path.basename(sys.argv[0]),
            "helper": helper.VALUE, "version": VERSION, "stdout_buffered": not sys.stdout.write_through,
        }


    pipeline = Pipeline(name="probe", steps=[probe()])

    if __name__ == "__main__":
        # The project changes between the definition and the run: the run takes the files start() snapshots.
        Path("helper.py").write_text('VALUE = "edited"\\n')
        Path(__file__).write_text(Path(__file__).read_text().replace('VERSION = "as defined"', 'VERSION = "edited"', 1))
        signal.signal(signal.SIGTERM, lambda *_: None)  # the starter's own handler: not the worker's
        stop = threading.Event()
        if "--with-thread" in sys.argv:  # a thread at start(): nothing may be forked
            thread = threading.Thread(target=stop.wait)
            thread.start()
        execution = pipeline.start()
        stop.set()
        status = execution.wait(timeout=120)
        run = execution.list_steps()[0]
        print(json.dumps({"id": execution.id, "client": os.getpid(), "status": status.value,
                          "reason": execution.failure_reason, "probe": run.properties.get("Return"),
                          "orchestrator": execution.record().orchestrator_pid, "client_cmdline": cmdline(os.getpid())}))
"""


def run_pipeline(project: Any, *args: str) -> dict[str, Any]:
    """``python pipeline.py *args`` in the project, as a user runs it; the JSON line it prints at its end."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "pipeline.py", *args], cwd=project.root, env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def write_probe(project: Any) -> None:
    project.write("helper.py", 'VALUE = "as defined"\n')
    project.write("pipeline.py", PROBE_PIPELINE)


def assert_spawned_workers_state(result: dict[str, Any], forgeline_home: Path) -> None:
    """What a worker spawned by the orchestrator is, whether or not this one was."""
    assert result["status"] == "Succeeded", result["reason"]
    probe = result["probe"]
    assert probe["sid"] == probe["pid"] == probe["pgid"]  # its own session: a stop reaches all it started
    assert probe["pid"] not in (result["client"], result["orchestrator"])
    assert probe["worker_env"] == "1" and probe["unbuffered"] == "1" and not probe["stdout_buffered"]
    assert probe["home"] == str(forgeline_home)
    assert probe["stdin"] == os.devnull
    assert probe["sigint_default"] and probe["sigterm_default"]
    assert not probe["main_is_pipeline"] and probe["argv0"] == "function_worker.py"
    # its stderr between calls is the orchestrator's log; none of the starter's files is open in it
    log_dir = forgeline_home / "logs" / result["id"]
    assert str(log_dir / "orchestrator.log") in probe["fds"]
    assert not any(target.endswith("forgeline.db") for target in probe["fds"])
    # the function and the module it imports come from the code snapshot start() took, edits included
    assert probe["helper"] == "edited" and probe["version"] == "edited"
    log = (log_dir / "Probe" / "1.log").read_text()
    assert "probe says hello" in log and "probe complains" in log


def test_the_step_runs_in_a_worker_forked_from_the_starting_process(project, forgeline_home):
    write_probe(project)

    result = run_pipeline(project)

    assert_spawned_workers_state(result, forgeline_home)
    probe = result["probe"]
    # forked from the starter (its command line) through a keeper (its parent), not spawned by the orchestrator
    assert probe["cmdline"] == result["client_cmdline"] == [sys.executable, "pipeline.py"]
    assert probe["parent_cmdline"] == result["client_cmdline"] and probe["ppid"] != result["client"]
    assert probe["ppid"] != result["orchestrator"]


def test_with_a_thread_running_at_start_the_orchestrator_spawns_the_worker(project, forgeline_home):
    write_probe(project)

    result = run_pipeline(project, "--with-thread")

    assert_spawned_workers_state(result, forgeline_home)
    probe = result["probe"]
    assert probe["cmdline"][1:3] == ["-m", "forgeline.jobs.function_worker"]
    assert probe["ppid"] == result["orchestrator"]


def test_forgeline_run_forks_the_worker_from_the_cli_process(project, forgeline_home, fresh_cli):
    write_probe(project)
    project.write("pipeline.py", PROBE_PIPELINE.replace('    if __name__ == "__main__":', "    if False:"))

    run = fresh_cli("run", "pipeline.py", cwd=project.root)

    assert run.returncode == 0, run
    store = project.store()
    (execution,) = store.list_executions("probe", 10)
    (step,) = store.list_step_runs(execution.id)
    probe = step.properties["Return"]
    assert probe["cmdline"][1:3] == ["-m", "forgeline.cli.main"] and "run" in probe["cmdline"]
    assert probe["sid"] == probe["pid"] and probe["worker_env"] == "1" and probe["home"] == str(forgeline_home)


STOPPED_PIPELINE = """
    import json, os, sys, time
    from pathlib import Path
    from forgeline.workflow import Pipeline, step


    @step(name="Sleep")
    def sleep_long() -> None:
        Path(os.environ["PID_FILE"]).write_text(str(os.getpid()))
        time.sleep(600)


    @step(name="Kill")
    def kill_itself() -> None:
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


    pipeline = Pipeline(name=sys.argv[1].lower(), steps=[sleep_long() if sys.argv[1] == "Sleep" else kill_itself()])

    if __name__ == "__main__":
        execution = pipeline.start()
        if sys.argv[1] == "Sleep":
            pid_file = Path(os.environ["PID_FILE"])
            while not pid_file.exists() or not pid_file.read_text():
                time.sleep(0.02)
            cmdline = Path(f"/proc/{pid_file.read_text()}/cmdline").read_bytes().decode().split("\\0")[:-1]
            execution.stop()
        else:
            cmdline = None
        status = execution.wait(timeout=120)
        run = execution.list_steps()[0]
        print(json.dumps({"status": status.value, "step": run.status.value, "reason": run.failure_reason,
                          "worker_cmdline": cmdline}))
"""


def test_stopping_the_execution_ends_the_forked_worker(project, forgeline_home, tmp_path, wait_until):
    project.write("pipeline.py", STOPPED_PIPELINE)
    pid_file = tmp_path / "worker.pid"
    env = {**os.environ, "PID_FILE": str(pid_file)}

    done = subprocess.run([sys.executable, "pipeline.py", "Sleep"], cwd=project.root, env=env, capture_output=True,
                          text=True, timeout=180)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["worker_cmdline"] == [sys.executable, "pipeline.py", "Sleep"]  # the forked worker ran it
    assert result["status"] == "Stopped" and result["step"] == "Stopped"
    pid = int(pid_file.read_text())
    wait_until(lambda: not _running(pid), timeout=60, what="the stopped worker to end")


def test_a_forked_worker_killed_by_a_signal_fails_its_step_as_interrupted(project, forgeline_home):
    """The orchestrator is not the forked worker's parent: the signal that ended it comes from its keeper."""
    project.write("pipeline.py", STOPPED_PIPELINE)

    done = subprocess.run([sys.executable, "pipeline.py", "Kill"], cwd=project.root, capture_output=True, text=True,
                          timeout=180)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["status"] == "Failed" and result["step"] == "Failed"
    assert "killed by signal SIGKILL" in result["reason"]


@pytest.fixture(autouse=True)
def _linux_only() -> None:
    if not os.path.isdir("/proc/self"):
        pytest.skip("reads /proc")


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except OSError:
        return False
