"""The supervisor keeps every line a script printed once nobody reads its pipes, however busy the machine is."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from forgeline.jobs import supervisor

from .conftest import write


def test_drain_copies_what_is_already_in_the_pipe_into_the_log_once_the_reader_is_gone(tmp_path: Path) -> None:
    script_read, script_write = os.pipe()
    reader, gone = os.pipe()
    os.close(reader)  # the orchestrator that read the supervisor's output is dead
    text = b"".join(b"line %d\n" % n for n in range(5000))  # several reads' worth
    os.write(script_write, text[:60_000])
    log = tmp_path / "job.log"
    relay = supervisor.Relay({script_read: gone}, str(log))
    written = 60_000
    while written < len(text):  # the rest arrives while the first part is drained
        relay.drain()
        written += os.write(script_write, text[written:written + 60_000])
    os.close(script_write)

    relay.drain()

    assert log.read_bytes() == text
    assert not relay.open  # the end of the pipe was seen and it was closed
    os.close(gone)


def test_output_left_in_the_pipe_when_the_script_exits_reaches_the_log_with_no_time_to_linger(
        tmp_path: Path, project: Path) -> None:
    script = write(project / "job.py", """
        import sys
        sys.stdout.write("".join(f"after the release, line {n} " + "x" * 1000 + "\\n" for n in range(200)))
        """)  # more than a pipe holds: the script exits while the last part still waits in the pipe
    log = tmp_path / "job.log"
    exit_status = tmp_path / "exit-status"
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads the supervisor's output: it goes to the log file
    runner = ("import sys; from forgeline.jobs import supervisor as s; s.LINGERING_PIPE_SECONDS = 0.0; "
              "sys.exit(s.supervise(sys.argv[1], sys.argv[2], sys.argv[3:]))")
    ended = subprocess.run([sys.executable, "-c", runner, str(exit_status), str(log), sys.executable, str(script)],
                           cwd=project, stdout=writer, stderr=subprocess.PIPE, check=False)
    os.close(writer)

    assert ended.returncode == 0, ended.stderr
    assert exit_status.read_text() == "0\n"
    lines = log.read_text().splitlines()
    assert lines == [f"after the release, line {n} " + "x" * 1000 for n in range(200)]
