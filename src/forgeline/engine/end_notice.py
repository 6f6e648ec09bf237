"""The end notice: a pipe through which a forked orchestrator wakes its starter's ``wait()`` the moment it ends.

Without it, ``PipelineExecution.wait()`` finds the end by reading the store every few milliseconds, which both
oversleeps the end and takes CPU from the run it waits for. The starter keeps the read end; the orchestrator
writes one byte once the execution's final status is stored, and its process's exit closes the write end in
every other case (a failure before the loop, a crash, a kill), so the reader always wakes and reads the store
to see which. Only a forked orchestrator has one: a spawned one, or an execution opened by id, is polled.
"""

from __future__ import annotations

import os
import select
import weakref

NOTICE = b"E"
"""What the orchestrator writes once the execution's final status is stored."""


def open_end_notice() -> tuple[EndNotice, int]:
    """A new notice (the starter's read end) and the write end for the orchestrator (closed on exec)."""
    read_fd, write_fd = os.pipe()
    return EndNotice(read_fd), write_fd


def send_end_notice(write_fd: int | None) -> None:
    """Tell the starter the execution has ended (once; a starter that is gone is no error)."""
    if write_fd is None:
        return
    try:
        os.write(write_fd, NOTICE)
    except OSError:  # nobody waits any more
        pass


class EndNotice:
    """The starter's end of the notice pipe; closed once it has told its news, or when the handle is dropped."""

    def __init__(self, read_fd: int) -> None:
        self._fd = read_fd
        self._close = weakref.finalize(self, os.close, read_fd)

    @property
    def open(self) -> bool:
        """Whether it may still tell something (it has not yet woken a waiter)."""
        return self._close.alive

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for the orchestrator's end; True when it came (or its process let go of the pipe).

        Once True, the notice is closed: the store then says how the execution ended.
        """
        if not self._close.alive:
            return False
        readable, _, _ = select.select([self._fd], [], [], max(seconds, 0.0))
        if not readable:
            return False
        self._close()
        return True

    def descriptor(self) -> int | None:
        """The pipe's read end while it is open (to hand to another process, which then holds its own copy)."""
        return self._fd if self._close.alive else None

    def close(self) -> None:
        """Let go of the pipe (the orchestrator's notice then finds nobody, which is fine)."""
        self._close()
