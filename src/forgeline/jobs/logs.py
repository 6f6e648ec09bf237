"""LogCapture: stream a job's stdout and stderr into its log file, and line by line (bounded) to callbacks."""

from __future__ import annotations

import os
import selectors
import threading
import time
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
    """Copies both pipes of a process to its log file as lines arrive (tail -f works), and lines to callbacks.

    One reader polls both pipes: the thread that waits for the job (``follow``, then ``join``), or a thread of
    its own (``start``). Reading in the waiting thread spares a job two thread starts and two hand-offs at its end.
    """

    def __init__(
        self,
        log_path: str | os.PathLike[str],
        callbacks: Iterable[LineCallback] = (),
        tail_lines: int = STDERR_TAIL_LINES,
    ) -> None:
        path = Path(log_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Unbuffered: every line reaches the file (and readers of it) with its own write.
        self._log = open(path, "ab", buffering=0)  # closed once both pipes have ended
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # one reader of the pipes at a time
        self._callbacks = tuple(callbacks)
        self._broken_callbacks: set[LineCallback] = set()
        self._stderr_tail: deque[str] = deque(maxlen=tail_lines)
        self._selector = selectors.DefaultSelector()
        self._thread: threading.Thread | None = None

    def follow(self, process: PipedProcess) -> LogCapture:
        """Take the pipes of a process started with stdout=PIPE and stderr=PIPE; ``join`` reads them; returns self."""
        for stream, pipe in (("stdout", process.stdout), ("stderr", process.stderr)):
            if pipe is not None:
                self._selector.register(pipe, selectors.EVENT_READ, (stream, BoundedLines(), bytearray()))
        if not self._selector.get_map():
            self._end()
        return self

    def start(self, process: PipedProcess) -> LogCapture:
        """Take the pipes (as ``follow``) and read them in a thread of their own from now on; returns self."""
        return self.follow(process).read_in_background()

    def read_in_background(self) -> LogCapture:
        """Go on reading in a thread of its own (a process still holds the pipes that nobody waits for)."""
        with self._lock:
            if self._thread is None and self._selector.get_map():
                self._thread = threading.Thread(target=self._read, args=(None,), name="forgeline-log",
                                                daemon=True)
                self._thread.start()
        return self

    def close(self) -> None:
        """Close the log file of a capture that never started (the process could not be spawned)."""
        if not self._selector.get_map():
            self._end()

    @property
    def stderr_tail(self) -> list[str]:
        """The last stderr lines seen, oldest first; what a failure message quotes."""
        with self._lock:
            return list(self._stderr_tail)

    def join(self, timeout: float | None = None) -> bool:
        """Until both pipes reached EOF (reading them unless a thread does); False if ``timeout`` passed first."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return self._read(timeout)

    def _read(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._reading:
            while self._selector.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                for key, _ in self._selector.select(left):
                    self._read_chunk(key)
            return True

    def _read_chunk(self, key: selectors.SelectorKey) -> None:
        stream, lines, unwritten = key.data
        try:
            chunk = os.read(key.fd, READ_CHUNK_BYTES)
            if chunk:
                self._write_whole_lines(unwritten, chunk)
                start = 0
                while start < len(chunk):  # one line at a time, as readline gave them
                    end = chunk.find(b"\n", start) + 1 or len(chunk)
                    complete = lines.feed(chunk[start:end])
                    if complete is not None:
                        self._line(stream, complete)
                    start = end
                return
            if lines.pending:  # the last line had no newline: the log still ends with one
                with self._lock:
                    self._log.write(bytes(unwritten) + b"\n")
                self._line(stream, lines.flush())
        except OSError:  # the log cannot be written: this pipe is given up, as its reader thread used to be
            pass
        self._selector.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
        if not self._selector.get_map():
            self._end()

    def _write_whole_lines(self, unwritten: bytearray, chunk: bytes) -> None:
        """Append to the log what ``chunk`` completes of its stream's lines; the rest waits for its newline.

        The two streams share one file: writing only whole lines keeps a stderr line from landing in the middle
        of a stdout line that arrived in two pieces (an unbuffered ``print`` writes the text and the newline
        apart). A line that grows beyond READ_CHUNK_BYTES without a newline is written as it is.
        """
        unwritten += chunk
        cut = unwritten.rfind(b"\n") + 1 or (len(unwritten) if len(unwritten) >= READ_CHUNK_BYTES else 0)
        if cut:
            with self._lock:
                self._log.write(bytes(unwritten[:cut]))
            del unwritten[:cut]

    def _end(self) -> None:
        with self._lock:
            self._log.close()
        self._selector.close()

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
