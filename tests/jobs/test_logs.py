"""LogCapture copies both pipes of a process to its log file and to line callbacks, keeping a stderr tail."""

from __future__ import annotations

import subprocess
import sys
import time

from forgeline.jobs.logs import LogCapture


def test_both_streams_reach_the_log_the_callbacks_and_the_stderr_tail(tmp_path):
    script = (
        "import sys\n"
        "print('epoch=1 loss=0.5')\n"
        "for i in range(25): print(f'warning {i}', file=sys.stderr)\n"
        "sys.stdout.write('no newline at the end')\n"
    )
    process = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen: list[tuple[str, str]] = []
    capture = LogCapture(tmp_path / "logs" / "job.log", [lambda s, line: seen.append((s, line))]).start(process)
    process.wait()
    assert capture.join(timeout=5)

    log = (tmp_path / "logs" / "job.log").read_text()
    assert "epoch=1 loss=0.5\n" in log
    assert "warning 0\n" in log and "warning 24\n" in log
    assert log.endswith("\n")
    assert ("stdout", "epoch=1 loss=0.5") in seen
    assert ("stdout", "no newline at the end") in seen
    assert ("stderr", "warning 24") in seen
    assert capture.stderr_tail == [f"warning {i}" for i in range(5, 25)]


def test_a_line_written_in_pieces_is_never_split_by_the_other_stream(tmp_path):
    # unbuffered print writes the text and the newline apart; stderr lines come in between
    script = (
        "import sys\n"
        "for i in range(300):\n"
        "    print(f'epoch {i}')\n"
        "    print(f'loss {i}', file=sys.stderr)\n"
        "sys.stdout.write('tail without newline')\n"
    )
    process = subprocess.Popen([sys.executable, "-u", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    capture = LogCapture(tmp_path / "job.log").follow(process)
    assert capture.join(timeout=60)
    process.wait()

    lines = (tmp_path / "job.log").read_text().splitlines()
    assert sorted(line for line in lines if line.startswith("epoch")) == sorted(f"epoch {i}" for i in range(300))
    assert sorted(line for line in lines if line.startswith("loss")) == sorted(f"loss {i}" for i in range(300))
    assert "tail without newline" in lines
    assert len(lines) == 601  # nothing glued together


def test_a_failing_callback_does_not_stop_the_capture(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", "print('a'); print('b')"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def broken(stream: str, line: str) -> None:
        raise RuntimeError("bad regex")

    capture = LogCapture(tmp_path / "job.log", [broken]).start(process)
    process.wait()
    assert capture.join(timeout=5)
    log = (tmp_path / "job.log").read_text()
    assert "a\n" in log and "b\n" in log
    assert "bad regex" in log


def test_a_followed_capture_reads_while_joined_and_goes_on_in_the_background(tmp_path):
    go_on = tmp_path / "go-on"
    script = (
        "import os, sys, time\n"
        "print('first', flush=True)\n"
        f"while not os.path.exists({str(go_on)!r}): time.sleep(0.01)\n"
        "print('second', flush=True)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    log = tmp_path / "job.log"
    capture = LogCapture(log).follow(process)
    deadline = time.monotonic() + 60
    while "first" not in log.read_text():  # nothing reads the pipes but the joining thread
        assert time.monotonic() < deadline, "the first line never reached the log"
        assert not capture.join(timeout=0.05)  # the script waits for go-on: its pipes stay open
    capture.read_in_background()  # the joining thread gives up; a thread of its own reads from now on
    go_on.touch()
    assert capture.join(timeout=60)
    process.wait()
    assert log.read_text() == "first\nsecond\n"
