"""A script run in a process forked from the supervisor launcher behaves as ``python script.py`` does."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from forgeline.jobs import supervisor_start
from forgeline.jobs.script_runner import added_search_path, runnable

from .conftest import write

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="supervisors are forked on Linux only")

PROBE = """
    import atexit, gzip, logging, os, signal, sys, threading, time, zipfile
    import helper

    logging.getLogger("probe").addHandler(logging.StreamHandler())  # its weak reference goes at the end, quietly

    def area():  # the size of the process's argument area: a new process's is exactly its command's
        fields = open("/proc/self/stat", "rb").read().rpartition(b")")[2].split()
        return int(fields[46]) - int(fields[45])

    command = sys.orig_argv
    print("name", __name__, "file", __file__, "argv", sys.argv, "orig", command[1:])
    print("path0", sys.path[0], "cwd", os.getcwd(), "value", os.environ.get("JOB_VALUE"), "helper", helper.WHERE)
    print("globals", sorted(globals()), "spec", __spec__, "loader", type(__loader__).__name__)
    print("signals", signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGPIPE),
          signal.getsignal(signal.SIGTERM))
    print("descriptors", sorted(os.listdir("/proc/self/fd")))
    print("launcher modules", [m for m in ("supervisor", "process_tree", "script_runner") if m in sys.modules])
    print("shown as", open("/proc/self/cmdline", "rb").read().replace(b"\\0", b" ").strip().decode())
    print("forked", area() != sum(len(part.encode()) + 1 for part in command), file=sys.stderr)
    atexit.register(lambda: print("atexit ran"))
    threading.Thread(target=lambda: (time.sleep(0.2), print("thread joined"))).start()
    left_open = open("main.txt", "w")
    left_open.write("main data")
    archive = zipfile.ZipFile("out.zip", "w")
    archive.writestr("a.txt", "zipped")
    packed = gzip.open("out.gz", "wt")
    packed.write("packed")
    how = sys.argv[1] if len(sys.argv) > 1 else ""
    if how == "error":
        def inner():
            raise ValueError("the script failed")
        inner()
    if how == "message":
        sys.exit("leaving with a message")
    if how == "code":
        sys.exit(3)
    if how == "interrupt":
        raise KeyboardInterrupt
    """

HELPER = """
    import os, sys
    WHERE = os.path.dirname(os.path.abspath(__file__))
    sys.modules["helper_settings"] = type("Settings", (), {})  # some libraries put classes in sys.modules
    held = open("helper.txt", "w")  # never closed: the interpreter's end flushes it
    held.write("helper data")
    """


def run(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``command`` as a job's supervisor runs it: its exit code (negative: the signal), stdout, stderr."""
    process = supervisor_start.start_supervisor(command, cwd=cwd, env=env, exit_status=cwd / "exit",
                                                log_path=str(cwd / "job.log"))
    out, err = process.stdout.read().decode(), process.stderr.read().decode()
    process.wait()
    return int((cwd / "exit").read_text()), out, err


def left_behind(folder: Path) -> tuple[str, str, bytes, str]:
    """What the script's unclosed files hold once it has ended."""
    return ((folder / "main.txt").read_text(), (folder / "helper.txt").read_text(),
            zipfile.ZipFile(folder / "out.zip").read("a.txt"), gzip.open(folder / "out.gz", "rt").read())


def script_env(**extra: str) -> dict[str, str]:
    """A script's environment as forgeline gives it (PYTHONUNBUFFERED, as the launcher started with)."""
    return {**os.environ, "PYTHONUNBUFFERED": "1", "JOB_VALUE": "seven", **extra}


@pytest.fixture()
def probe(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    write(code / "helper.py", HELPER)
    return write(code / "probe.py", PROBE)


@pytest.mark.parametrize("how", ["", "error", "message", "code", "interrupt", "with spaces"])
def test_a_forked_script_prints_exits_and_leaves_its_files_as_a_new_interpreter_would(
        tmp_path: Path, probe: Path, how: str) -> None:
    forked_dir, new_dir = tmp_path / "forked", tmp_path / "new"
    forked_dir.mkdir()
    new_dir.mkdir()
    command = [sys.executable, str(probe), *([how] if how else [])]

    code, out, err = run(command, forked_dir, script_env())
    new = subprocess.run(command, cwd=new_dir, env=script_env(), capture_output=True, text=True)

    assert "forked True" in err, err  # it ran in the process forked ahead, not in a new interpreter
    assert code == new.returncode
    assert out.replace(str(forked_dir), "<cwd>") == new.stdout.replace(str(new_dir), "<cwd>")
    assert err.replace("forked True", "forked") == new.stderr.replace("forked False", "forked")
    assert left_behind(forked_dir) == left_behind(new_dir) == ("main data", "helper data", b"zipped", "packed")
    assert "launcher modules []" in out and "thread joined\natexit ran" in out
    assert f"shown as {' '.join(command)}" in out  # what ps shows


def test_a_syntax_error_is_reported_as_the_interpreter_reports_it(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.py", "x = = 1\n")

    code, _, err = run([sys.executable, str(broken)], tmp_path, script_env())

    new = subprocess.run([sys.executable, str(broken)], capture_output=True, text=True)
    assert (code, err) == (new.returncode, new.stderr) and code == 1
    assert err.startswith(f'  File "{broken}", line 1') and "SyntaxError" in err


def test_entries_a_job_puts_in_front_of_pythonpath_are_searched_first(tmp_path: Path, probe: Path) -> None:
    modules = tmp_path / "modules"
    modules.mkdir()
    (probe.parent / "helper.py").rename(modules / "helper.py")  # found only through the job's PYTHONPATH
    env = script_env(PYTHONPATH=os.pathsep.join(filter(None, [str(modules), os.environ.get("PYTHONPATH")])))

    code, out, err = run([sys.executable, str(probe)], tmp_path, env)

    assert code == 0, err
    assert "forked True" in err and f"helper {modules}" in out


@pytest.mark.parametrize("change", ["a start-up variable", "another interpreter", "an interpreter option"])
def test_a_script_that_python_would_start_differently_runs_in_a_new_interpreter(
        tmp_path: Path, probe: Path, change: str) -> None:
    env, command = script_env(), [sys.executable, str(probe)]
    if change == "a start-up variable":
        env["PYTHONHASHSEED"] = "7"
    elif change == "another interpreter":
        link = tmp_path / "python"
        link.symlink_to(sys.executable)
        command[0] = str(link)
    else:
        command.insert(1, "-B")

    code, out, err = run(command, tmp_path, env)

    assert code == 0, err
    assert "forked False" in err and "value seven" in out


def test_runnable_takes_only_the_interpreters_own_scripts_started_alike(tmp_path: Path) -> None:
    script = write(tmp_path / "job.py", "pass\n")
    started = {"PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8", "PATH": "/bin", "PYTHONPATH": "/base"}
    python = "/venv/bin/python"

    assert runnable([python, str(script), "--x"], python, started, {**started, "SM_MODEL_DIR": "/m"}) == []
    assert runnable([python, str(script)], python, started, {**started, "PYTHONPATH": "/code:/base"}) == ["/code"]
    assert runnable([python, str(script)], python, started, {**started, "LANG": "de_DE.UTF-8"}) is None
    assert runnable([python, str(script)], python, started, {**started, "LD_PRELOAD": "/lib.so"}) is None
    assert runnable([python, str(script)], python, started, {**started, "PYTHONPATH": "/other"}) is None
    assert runnable([python, str(tmp_path / "missing.py")], python, started, started) is None
    assert runnable([python, "-u", str(script)], python, started, started) is None
    assert runnable(["/usr/bin/python3", str(script)], python, started, started) is None
    assert added_search_path("", "code:/abs") is None  # a relative entry means another folder per process
    assert added_search_path("/base", "/a:/b:/base") == ["/a", "/b"]


def test_once_its_orchestrator_has_gone_nothing_of_the_launcher_is_left(tmp_path: Path, probe: Path, wait_until) -> None:
    mark = f"FORGELINE_TEST_MARK={tmp_path.name}"
    orchestrator = write(tmp_path / "orchestrator.py", f"""
        import os, sys
        from pathlib import Path
        from forgeline.jobs import supervisor_start
        held = [os.open(os.devnull, os.O_RDONLY) for _ in range(6)]  # as an orchestrator holds its store, its logs
        for folder in ("one", "two"):  # two jobs: the second's spare was forked while the first ran
            Path(folder).mkdir()
            job = supervisor_start.start_supervisor(
                [sys.executable, {str(probe)!r}], cwd=Path(folder).resolve(), env={{**os.environ}},
                exit_status=Path(folder, "exit").resolve(), log_path=str(Path(folder, "job.log").resolve()))
            job.stdout.read()
            print(job.stderr.read().decode(), end="")  # the probe says whether it ran forked
            assert job.wait() == 0
        """)
    done = subprocess.run([sys.executable, str(orchestrator)], cwd=tmp_path, capture_output=True, text=True,
                          env=script_env(FORGELINE_TEST_MARK=tmp_path.name))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("forked True") == 2

    def marked() -> list[int]:
        found = []
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and mark.encode() in Path(f"/proc/{entry}/environ").read_bytes().split(b"\0"):
                    found.append(int(entry))
            except OSError:
                continue
        return found

    wait_until(lambda: not marked(), timeout=30, what="the launcher and its spare supervisor to exit")
