"""LogCapture: stream a job's stdout and stderr, line by line, into its log file and to line callbacks."""

from __future__ import annotations

import os
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

LineCallback = Callable[[str, str], None]
"""Called with (stream, line) for every line, stream being "stdout" or "stderr"; e.g. a metric regex."""

STDERR_TAIL_LINES = 20
TAIL_LINE_CHARS = 1000
"""Longer stderr lines are cut in the tail that failure messages quote (the log keeps them whole)."""


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

    def start(self, process: subprocess.Popen[bytes]) -> LogCapture:
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
        try:
            for raw in iter(pipe.readline, b""):
                self._write(stream, raw)
        finally:
            pipe.close()
            with self._lock:
                self._open_streams -= 1
                if self._open_streams == 0:
                    self._log.close()

    def _write(self, stream: str, raw: bytes) -> None:
        if not raw.endswith(b"\n"):
            raw += b"\n"
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        with self._lock:
            self._log.write(raw)
            if stream == "stderr":
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
