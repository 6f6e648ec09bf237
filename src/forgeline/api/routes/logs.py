"""/executions/{id}/steps/{step}/logs: a step's log, whole or a byte range, or followed live as Server-Sent Events.

The stream's events: ``log`` (a piece of the log; its id ``<attempt>:<byte offset after it>``, so a client that
reconnects with ``Last-Event-ID`` goes on from exactly there), ``attempt`` (a retry's log follows: its number),
and ``end`` (the step ended: its status). A cache hit's log is that of the execution that ran the step; the
``X-Forgeline-Source-Execution`` header names it. A byte range is moved onto UTF-8 character boundaries (a page
never splits a character); ``X-Forgeline-Log-Offset`` is where it starts, ``X-Forgeline-Log-Next-Offset`` where
the next page starts.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse

from forgeline.api.context import ApiStore, Viewer
from forgeline.engine.step_records import chosen_attempt, logged_attempts, ran_in, step_ended
from forgeline.errors import ForgelineError
from forgeline.store.metadata.protocol import MetadataStore
from forgeline.store.metadata.records import StepAttempt, StepRun

router = APIRouter(prefix="/executions", tags=["logs"])

CHUNK_BYTES = 256 * 1024
POLL_SECONDS = 0.2
_END = object()
KEEPALIVE_SECONDS = 15.0
"""A comment line this often while nothing happens, so proxies keep the stream open."""


@dataclass(frozen=True)
class LogPosition:
    """Where a reader of a step's log stands: an attempt and a byte offset in its log."""

    attempt: int
    offset: int

    @classmethod
    def parse(cls, text: str) -> LogPosition:
        """``<attempt>:<offset>`` (an SSE event id); ForgelineError for anything else."""
        attempt, sep, offset = text.partition(":")
        if not (sep and attempt.isdigit() and offset.isdigit()):
            raise ForgelineError(f"Last-Event-ID {text!r}: expected <attempt>:<byte offset>, the id of a log event")
        return cls(int(attempt), int(offset))

    def __str__(self) -> str:
        return f"{self.attempt}:{self.offset}"


def whole_characters(data: bytes) -> int:
    """How many leading bytes of ``data`` end on a UTF-8 character boundary (an incomplete last one left out)."""
    for back in range(1, min(4, len(data)) + 1):  # a UTF-8 lead byte near the end whose character is cut off
        byte = data[-back]
        if byte & 0xC0 == 0x80:
            continue
        needed = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4 if byte & 0xF8 == 0xF0 else 1
        return len(data) - back if needed > back else len(data)
    return len(data)


def read_piece(path: str, offset: int, limit: int = CHUNK_BYTES) -> bytes:
    """Up to ``limit`` bytes of a log from ``offset``, cut before an incomplete UTF-8 character at the end."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read(limit)
    except FileNotFoundError:
        return b""
    return data[:whole_characters(data)]  # the cut-off character comes with the next read, once written whole


def page_bounds(path: str, offset: int, length: int | None) -> tuple[int, int]:
    """The byte range to return for ``offset``/``length``, moved onto UTF-8 character boundaries: the start
    forward past a character's continuation bytes, the end back before a character it would cut."""
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = min(offset, size)
            handle.seek(start)
            head = handle.read(3)
            start += next((n for n, byte in enumerate(head) if byte & 0xC0 != 0x80), len(head))
            end = size if length is None else min(size, offset + length)
            if end <= start:
                return start, start
            if end < size:  # inside a character when the byte at ``end`` continues one: end at its lead byte
                low = max(start, end - 3)
                handle.seek(low)
                around = handle.read(end - low + 1)  # bytes low..end, both included
                lead = len(around) - 1
                while lead > 0 and around[lead] & 0xC0 == 0x80:
                    lead -= 1
                return start, low + lead
            handle.seek(max(start, end - 4))
            last = handle.read()
            return start, end - len(last) + whole_characters(last)
    except FileNotFoundError:
        return 0, 0


def sse(event: str, data: str, event_id: str | None = None) -> str:
    """One Server-Sent Event; every line of ``data`` on its own ``data:`` line (the client joins them with \\n)."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return head + f"event: {event}\n" + "".join(f"data: {line}\n" for line in data.split("\n")) + "\n"


def follow(store: MetadataStore, run: StepRun, start: LogPosition | None,
           next_attempts: bool) -> Iterator[str | None]:
    """The log as it grows, as SSE, until the step ends (retries' logs follow when ``next_attempts``).

    None means nothing new yet: the reader waits POLL_SECONDS before asking again.
    """
    cursor: int | None = None
    quiet_since = time.monotonic()
    while True:  # wait for the step to have a log, or to end without one (a skip, a failure before its job)
        events = store.events(run.execution_id, after=cursor)
        cursor = events[-1].id if events else cursor
        run = store.get_step_run(run.execution_id, run.name)
        if logged_attempts(store, run, None) or run.status.is_terminal:
            break
        if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield f": waiting for step {run.name} to start\n\n"
        yield None  # nothing new: wait a poll (outside the worker thread, see paced)
    found = logged_attempts(store, run, start.attempt if start else None)
    if not found:
        yield sse("end", run.status.value)
        return
    attempt = found[-1]
    offset = start.offset if start else 0
    ended = run.status.is_terminal
    while True:
        events = [e for e in store.events(run.execution_id, after=cursor) if e.step_name == run.name]
        cursor = events[-1].id if events else cursor
        for event in events:
            ended = step_ended(event, ended)
        while piece := read_piece(attempt.log_path or "", offset):
            offset += len(piece)
            quiet_since = time.monotonic()
            yield sse("log", piece.decode("utf-8", errors="replace"), str(LogPosition(attempt.attempt, offset)))
        newer = [a for a in logged_attempts(store, run, None) if a.attempt > attempt.attempt] if next_attempts else []
        if newer:
            attempt, offset = newer[0], 0
            yield sse("attempt", str(attempt.attempt), str(LogPosition(attempt.attempt, 0)))
            continue
        if ended:  # read once more after the end was seen (above), so the last lines are not lost
            yield sse("end", store.get_step_run(run.execution_id, run.name).status.value)
            return
        if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            quiet_since = time.monotonic()
            yield ": still running\n\n"
        yield None  # nothing new: wait a poll (outside the worker thread, see paced)


async def paced(events: Iterator[str | None]) -> AsyncIterator[str]:
    """The stream of ``follow``, each poll read in a worker thread; the waits between polls hold no thread, so
    many clients may follow logs without starving the API's other calls."""
    while True:
        item = await anyio.to_thread.run_sync(next, events, _END)
        if item is _END:
            return
        if isinstance(item, str):
            yield item
        else:
            await anyio.sleep(POLL_SECONDS)


def whole(attempt: StepAttempt, offset: int, length: int | None) -> Iterator[bytes]:
    """The log's bytes from ``offset``, ``length`` of them at most (None: to the end), in chunks."""
    left = length
    while left is None or left > 0:
        piece = read_piece(attempt.log_path or "", offset, CHUNK_BYTES if left is None else min(left, CHUNK_BYTES))
        if not piece:
            return
        offset += len(piece)
        left = None if left is None else left - len(piece)
        yield piece


@router.get("/{execution_id}/steps/{step}/logs", response_class=StreamingResponse,
            responses={200: {"content": {"text/plain": {}, "text/event-stream": {}}}})
def logs(
    execution_id: str,
    step: str,
    store: ApiStore,
    caller: Viewer,
    attempt: Annotated[int | None, Query(ge=1, description="Attempt number (default: the latest).")] = None,
    offset: Annotated[int, Query(ge=0, description="First byte to return.")] = 0,
    length: Annotated[int | None, Query(ge=0, description="At most this many bytes.")] = None,
    follow_log: Annotated[bool, Query(alias="follow", description="Stream as Server-Sent Events until the "
                                                                  "step ends.")] = False,
    accept: Annotated[str | None, Header()] = None,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """A step's stdout and stderr: whole or a byte range as text, or followed (``follow=true`` or
    ``Accept: text/event-stream``) as Server-Sent Events from the start or from ``Last-Event-ID``."""
    record = store.get_execution(execution_id)
    asked = store.get_step_run(record.id, step)
    source = ran_in(store, asked)
    headers = {"X-Forgeline-Execution": record.id, "X-Forgeline-Source-Execution": source.execution_id}
    if follow_log or "text/event-stream" in (accept or ""):
        start = LogPosition.parse(last_event_id) if last_event_id else None
        if start is None and attempt is not None:
            start = LogPosition(attempt, offset)
        stream = paced(follow(store, source, start, next_attempts=attempt is None))
        return StreamingResponse(stream, media_type="text/event-stream",
                                 headers={**headers, "Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    chosen = chosen_attempt(store, source, attempt)
    size = os.path.getsize(chosen.log_path) if chosen.log_path and os.path.exists(chosen.log_path) else 0
    first, end = page_bounds(chosen.log_path or "", offset, length)
    headers |= {"X-Forgeline-Attempt": str(chosen.attempt), "X-Forgeline-Log-Size": str(size),
                "X-Forgeline-Log-Offset": str(first), "X-Forgeline-Log-Next-Offset": str(end)}
    return StreamingResponse(whole(chosen, first, end - first), media_type="text/plain; charset=utf-8",
                             headers=headers)
