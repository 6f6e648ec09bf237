"""LogCapture: stream a job's stdout and stderr into its log file, and line by line (bounded) to callbacks."""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Protocol

LineCallback = Callable[[str, str], None]
"""Called with (stream, line) for every line, stream being "stdout" or "stderr"; e.g. a metric regex."""

STDERR_TAIL_LINES = 20
TAIL_LINE_CHARS = 1000
READ_CHUNK_BYTES = 64 * 1024
"""A pipe is read this much at a time at most, so a line without end never sits whole in memory."""
MAX_LINE_BYTES = 64 * 1024
"""Line callbacks (metric regexes) and the stderr tail see at most this much of one line."""
"""Longer stderr lines are cut in the tail that failure messages quote (the log keeps them whole)."""


class PipedProcess(Protocol):
    """A process whose output LogCapture reads: a ``subprocess.Popen`` with pipes, or a forked supervisor."""

    @property
    def stdout(self) -> IO[bytes] | None:
        """The read end of its stdout pipe."""

    @property
    def stderr(self) -> IO[bytes] | None:
        """The read end of its stderr pipe."""


class BoundedLines:
    """Joins chunks read from a pipe into lines, keeping at most ``max_bytes`` of any one line.

    A line longer than that (a progress bar without newlines, a dumped array) is passed on cut at ``max_bytes``;
    the rest of it is dropped here, while the log file gets every byte.
    """

    def __init__(self, max_bytes: int = MAX_LINE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._buffer = bytearray()
        self.pending = False

    def feed(self, chunk: bytes) -> bytes | None:
        """Take one chunk (at most one line's worth, as ``readline(size)`` gives); return a line it completes."""
        room = self._max_bytes - len(self._buffer)
        if room > 0:
            self._buffer += chunk[:room]
        self.pending = not chunk.endswith(b"\n")
        return None if self.pending else self.flush()

    def flush(self) -> bytes:
        """The line gathered so far (possibly cut), and start a new one."""
        line = bytes(self._buffer)
        self._buffer.clear()
        self.pending = False
        return line


class LogCapture:
    """Reader threads that copy both pipes of a process to its log file as lines arrive (tail -f works)."""

    def __init__(
        self,
        log_path: str | os.PathLike[str],
        callbacks: Iterable[LineCallback] = (),
        tail_lines: int = STDERR_TAIL_LINES,
    ) -> None:
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: every line reaches the file (and readers of it) with its own write.
        self._log = open(path, "ab", buffering=0)  # closed by the last reader thread
        self._lock = threading.Lock()
        self._callbacks = tuple(callbacks)
        self._broken_callbacks: set[LineCallback] = set()
        self._stderr_tail: deque[str] = deque(maxlen=tail_lines)
        self._threads: list[threading.Thread] = []
        self._open_streams = 0

    def start(self, process: PipedProcess) -> LogCapture:
        """Start reading a process started with stdout=PIPE and stderr=PIPE; returns self."""
        pipes = [(stream, pipe) for stream, pipe in (("stdout", process.stdout), ("stderr", process.stderr)) if pipe]
        self._open_streams = len(pipes)
        for stream, pipe in pipes:
            thread = threading.Thread(
                target=self._pump, args=(stream, pipe), name=f"forgeline-log-{stream}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        if not pipes:
            self.close()
        return self

    def close(self) -> None:
        """Close the log file of a capture that never started (the process could not be spawned)."""
        if not self._threads:
            self._log.close()

    @property
    def stderr_tail(self) -> list[str]:
        """The last stderr lines seen, oldest first; what a failure message quotes."""
        with self._lock:
            return list(self._stderr_tail)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until both pipes reached EOF; False if `timeout` passed first (a child may still hold them)."""
        for thread in self._threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)

    def _pump(self, stream: str, pipe: IO[bytes]) -> None:
        lines = BoundedLines()
        try:
            for chunk in iter(lambda: pipe.readline(READ_CHUNK_BYTES), b""):
                complete = lines.feed(chunk)
                with self._lock:
                    self._log.write(chunk)
                if complete is not None:
                    self._line(stream, complete)
            if lines.pending:  # the last line had no newline: the log still ends with one
                with self._lock:
                    self._log.write(b"\n")
                self._line(stream, lines.flush())
        finally:
            pipe.close()
            with self._lock:
                self._open_streams -= 1
                if self._open_streams == 0:
                    self._log.close()

    def _line(self, stream: str, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if stream == "stderr":
            with self._lock:
                self._stderr_tail.append(line[:TAIL_LINE_CHARS])
        for callback in self._callbacks:
            self._call(callback, stream, line)

    def _call(self, callback: LineCallback, stream: str, line: str) -> None:
        if callback in self._broken_callbacks:
            return
        try:
            callback(stream, line)
        except Exception as exc:  # a broken callback must not stop the pipe from draining
            with self._lock:
                self._broken_callbacks.add(callback)
                note = f"[forgeline] log line callback {callback!r} failed and is skipped from now on: {exc!r}\n"
                self._log.write(note.encode())
