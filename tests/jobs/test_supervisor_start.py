"""A job's supervisor, forked from the orchestrator or started by path: the same job, ended and recorded alike."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from forgeline.jobs import supervisor_launcher, supervisor_start
from forgeline.jobs.control import JobControl
from forgeline.jobs.process import read_exit_status, read_supervisor_pid, run_script

from .conftest import write


@pytest.fixture(params=["forked", "by path"])
def start_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "forked" and not sys.platform.startswith("linux"):
        pytest.skip("the supervisor is forked on Linux only")
    monkeypatch.setattr(supervisor_start, "LAUNCH_SUPERVISOR", request.param == "forked")
    return str(request.param)


def test_either_way_the_script_runs_its_output_is_logged_and_its_exit_is_recorded(tmp_path, project, start_mode):
    script = write(project / "job.py", """
        import os, sys
        print("to stdout", os.environ["JOB_VALUE"], os.getcwd())
        print("to stderr", file=sys.stderr)
        sys.exit(3)
        """)
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    log = tmp_path / "job.log"
    ended = run_script([sys.executable, str(script)], cwd=job_dir, env={**os.environ, "JOB_VALUE": "seven"},
                       log_path=str(log), control=JobControl())
    assert ended.exit_code == 3 and ended.cause is None
    assert ended.stderr_tail == ["to stderr"]
    assert f"to stdout seven {job_dir}" in log.read_text()
    assert read_exit_status(job_dir) == 3
    assert read_supervisor_pid(job_dir) not in (None, os.getpid())


def test_a_script_that_cannot_start_exits_127_with_the_reason(tmp_path, start_mode):
    ended = run_script([str(tmp_path / "missing")], cwd=tmp_path, env=dict(os.environ),
                       log_path=str(tmp_path / "job.log"), control=JobControl())
    assert ended.exit_code == 127
    assert "could not start" in "\n".join(ended.stderr_tail)


def test_a_stop_ends_the_script_and_is_recorded_as_forgeline_s(tmp_path, project, start_mode, wait_until):
    script = write(project / "waits.py", """
        import time
        open("started", "w").close()
        time.sleep(60)
        """)
    control = JobControl()
    stopper = threading.Thread(target=lambda: (wait_until((tmp_path / "started").exists, what="the script"),
                                               control.stop(grace_seconds=5)))
    stopper.start()
    ended = run_script([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ),
                       log_path=str(tmp_path / "job.log"), control=control)
    stopper.join()
    assert ended.cause is not None and ended.cause.value == "Stopped"
    assert ended.exit_code == -signal.SIGTERM
    assert read_exit_status(tmp_path) == -signal.SIGTERM


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor is forked on Linux only")
def test_a_forked_supervisor_keeps_none_of_the_orchestrator_s_descriptors(tmp_path, project, wait_until):
    # Another job's pipe held open by this job's supervisor would keep that job's log capture from ending.
    other_read, other_write = os.pipe()
    os.set_inheritable(other_write, True)
    script = write(project / "waits.py", """
        import os, time
        open("started", "w").close()
        while not os.path.exists("release"):
            time.sleep(0.02)
        """)
    found: dict[str, list[str]] = {}

    def look_then_release() -> None:
        wait_until((tmp_path / "started").exists, what="the script to start")
        supervisor = read_supervisor_pid(tmp_path)
        found["fds"] = sorted(os.listdir(f"/proc/{supervisor}/fd"), key=int)
        found["targets"] = [os.readlink(f"/proc/{supervisor}/fd/{fd}") for fd in found["fds"]]
        (tmp_path / "release").write_text("")

    looker = threading.Thread(target=look_then_release)
    looker.start()
    try:
        ended = run_script([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ),
                           log_path=str(tmp_path / "job.log"), control=JobControl())
    finally:
        looker.join()
        own_pipe = os.readlink(f"/proc/self/fd/{other_write}")
        os.close(other_read)
        os.close(other_write)
    assert ended.exit_code == 0
    assert own_pipe not in found["targets"]
    # standard input, output and error, and the read ends of the script's two pipes: nothing else
    assert len(found["fds"]) == 5, found


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])


def _ended(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor launcher is used on Linux only")
def test_a_job_outlives_its_supervisor_launcher_and_the_next_job_gets_a_new_one(tmp_path, project, monkeypatch,
                                                                                wait_until):
    monkeypatch.setattr(supervisor_start, "LAUNCH_SUPERVISOR", True)
    script = write(project / "waits.py", """
        import os, sys, time
        open("started", "w").close()
        while not os.path.exists("release"):
            time.sleep(0.02)
        print("released")
        sys.exit(4)
        """)
    launchers: list[int] = []

    def kill_launcher_then_release() -> None:
        wait_until((tmp_path / "started").exists, what="the script to start")
        launchers.append(_parent_of(read_supervisor_pid(tmp_path)))
        os.kill(launchers[0], signal.SIGKILL)
        wait_until(lambda: _ended(launchers[0]), what="the launcher to die")
        (tmp_path / "release").write_text("")

    killer = threading.Thread(target=kill_launcher_then_release)
    killer.start()
    try:
        ended = run_script([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ),
                           log_path=str(tmp_path / "job.log"), control=JobControl())
    finally:
        killer.join()
    assert ended.exit_code == 4  # recorded by the supervisor, which carried on without its launcher
    assert "released" in (tmp_path / "job.log").read_text()

    again = run_script([sys.executable, "-c", "pass"], cwd=tmp_path, env=dict(os.environ),
                       log_path=str(tmp_path / "again.log"), control=JobControl())
    assert again.exit_code == 0  # the dead launcher could not have started it: a new one did


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor launcher is used on Linux only")
def test_a_job_ends_once_its_exit_status_is_written_without_waiting_for_the_launcher(tmp_path, project,
                                                                                     monkeypatch, wait_until):
    # The launcher reports a supervisor's end only once it has collected it; the job's pipes closing after the
    # exit status is written tell the same sooner. A frozen launcher shows which of the two the job waits for.
    monkeypatch.setattr(supervisor_start, "LAUNCH_SUPERVISOR", True)
    script = write(project / "waits.py", """
        import os, sys, time
        open("started", "w").close()
        while not os.path.exists("release"):
            time.sleep(0.02)
        sys.exit(5)
        """)
    launcher: list[int] = []
    ended: list[object] = []

    def run() -> None:
        ended.append(run_script([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ),
                                log_path=str(tmp_path / "job.log"), control=JobControl()))

    job = threading.Thread(target=run)
    job.start()
    try:
        wait_until((tmp_path / "started").exists, timeout=60, what="the script to start")
        launcher.append(_parent_of(read_supervisor_pid(tmp_path)))
        os.kill(launcher[0], signal.SIGSTOP)
        (tmp_path / "release").write_text("")
        wait_until(lambda: ended, timeout=60, what="the job to end while its launcher is stopped")
    finally:
        if launcher:
            os.kill(launcher[0], signal.SIGCONT)
        job.join()
    assert ended[0].exit_code == 5 and ended[0].cause is None  # type: ignore[attr-defined]


def _start_launcher() -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """A supervisor launcher on a socket of its own, as an orchestrator starts it: (our end, the launcher)."""
    own, theirs = socket.socketpair()
    launcher = subprocess.Popen([sys.executable, "-S", supervisor_start.LAUNCHER, str(theirs.fileno())],
                                pass_fds=[theirs.fileno()], stderr=subprocess.PIPE)
    theirs.close()
    return own, launcher


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor launcher is used on Linux only")
def test_a_launcher_whose_orchestrator_leaves_its_last_report_unread_ends_quietly(tmp_path):
    # A job ends on its exit status, so an orchestrator may exit before it reads the launcher's last report.
    import marshal
    import select

    from forgeline.jobs.supervisor_launcher import HEADER, RECORD

    own, launcher = _start_launcher()
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    job = ([sys.executable, "-c", "pass"], str(tmp_path), dict(os.environ), str(tmp_path / "status"),
           str(tmp_path / "log"))
    payload = marshal.dumps(job)
    socket.send_fds(own, [HEADER.pack(len(payload))], [out_write, err_write])
    own.sendall(payload)
    os.close(out_write)
    os.close(err_write)
    assert own.recv(RECORD.size)[:1] == b"S"
    while os.read(out_read, 4096) or os.read(err_read, 4096):  # until the supervisor lets go of the pipes
        pass
    assert select.select([own], [], [], 60)[0]  # its end has been reported: left unread
    own.close()
    _, stderr = launcher.communicate(timeout=60)
    assert launcher.returncode == 0 and b"Traceback" not in stderr, stderr.decode()
    os.close(out_read)
    os.close(err_read)


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the supervisor launcher is used on Linux only")
def test_a_spare_and_the_script_process_it_forked_ahead_both_end_when_no_job_comes(wait_until):
    own, launcher = _start_launcher()
    try:
        wait_until(lambda: _children(launcher.pid), timeout=60, what="the launcher's spare")
        (spare,) = _children(launcher.pid)
        wait_until(lambda: _children(spare), timeout=60, what="the script process the spare forks ahead")
        (script,) = _children(spare)
        assert os.getpgid(spare) == spare and os.getpgid(script) == spare  # a stop of the job's group reaches both
    finally:
        own.close()
        _, stderr = launcher.communicate(timeout=60)
    assert launcher.returncode == 0 and b"Traceback" not in stderr, stderr.decode()
    wait_until(lambda: _ended(spare) and _ended(script), timeout=60, what="the spare and its script process to end")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="spare supervisors are forked on Linux only")
def test_a_spare_whose_launcher_goes_without_a_job_exits_and_never_returns_into_the_launcher():
    launcher_side, spare_side = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # as the launcher's forked spare
        try:
            launcher_side.close()
            supervisor_launcher.wait_for_job(spare_side, 64, signal.pthread_sigmask(signal.SIG_BLOCK, []))
        finally:
            os._exit(99)  # it came back: it would have gone on as a second launcher
    spare_side.close()
    launcher_side.close()  # the launcher goes without sending a job

    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
