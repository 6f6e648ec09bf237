"""Logs are read in bounded chunks: a line without end never sits whole in memory, and the log keeps every byte."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from forgeline.jobs.logs import MAX_LINE_BYTES, BoundedLines

MB = 1024 * 1024
ENDLESS_LINE_MB = 200

CAPTURE_ONE_ENDLESS_LINE = textwrap.dedent("""
    import json, subprocess, sys
    from forgeline.jobs.logs import LogCapture

    # A process started from a large one (a test worker) inherits its peak: start counting from here.
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")

    log_path, megabytes = sys.argv[1], int(sys.argv[2])
    writer = "import sys\\nfor _ in range(%d): sys.stdout.write('x' * 1048576)\\nsys.stdout.write(' loss 0.25\\\\n')" % megabytes
    process = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    capture = LogCapture(log_path, [lambda stream, line: lines.append(len(line))]).start(process)
    process.wait()
    assert capture.join(timeout=60)
    status = open("/proc/self/status").read()
    peak_kb = int(status.split("VmHWM:")[1].split()[0])
    print(json.dumps({"peak_mb": peak_kb / 1024, "lines": lines}))
""")


def test_a_200_mb_line_without_newline_is_captured_whole_in_bounded_memory(tmp_path):
    log = tmp_path / "job.log"
    # measured in a process of its own: its peak resident memory is what the capture needed, nothing else
    done = subprocess.run([sys.executable, "-c", CAPTURE_ONE_ENDLESS_LINE, str(log), str(ENDLESS_LINE_MB)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["peak_mb"] < ENDLESS_LINE_MB / 2, report  # reading the line whole needs at least 200 MB
    assert report["lines"] == [MAX_LINE_BYTES]  # the callback saw one line, cut at the bound
    assert log.stat().st_size == ENDLESS_LINE_MB * MB + len(" loss 0.25\n")
    with open(log, "rb") as handle:
        handle.seek(-20, 2)
        assert handle.read() == b"x" * 9 + b" loss 0.25\n"


def test_bounded_lines_join_chunks_and_cut_a_long_line():
    lines = BoundedLines(max_bytes=8)
    assert lines.feed(b"abc") is None
    assert lines.feed(b"de\n") == b"abcde\n"
    assert lines.feed(b"0123456789") is None
    assert lines.feed(b"abcdef") is None
    assert lines.feed(b"gh\n") == b"01234567"
    assert lines.feed(b"tail") is None and lines.pending
    assert lines.flush() == b"tail" and not lines.pending
