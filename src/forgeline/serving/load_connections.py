"""Keep-alive HTTP/1.1 connections for the load generator: one request in flight per connection, no pipelining.

Written on asyncio's transport/protocol layer rather than streams or a full client library: the generator must
issue thousands of identical requests a second from one core, and the only per-request work left here is one
``write`` of pre-built bytes and one scan of the response head.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

MAX_HEAD_BYTES = 64 * 1024
NO_BODY_STATUSES = frozenset({204, 304})

Outcome = int | str
"""An HTTP status, or why there is none: ``"timeout"``, ``"connection"`` or ``"protocol"``."""


class ProtocolViolation(Exception):
    """The server's bytes are not an HTTP/1.x response."""


class Request:
    """One scheduled request: when it was due, and whether it was already retried on a fresh connection."""

    __slots__ = ("scheduled", "retried", "done")

    def __init__(self, scheduled: float) -> None:
        self.scheduled = scheduled
        self.retried = False
        self.done = False


class ResponseReader:
    """Incremental reader of one HTTP/1.x response: status, then the body by length, chunks, or until close."""

    __slots__ = ("status", "keep_alive", "until_close", "_buffer", "_remaining", "_chunked", "_in_chunk")

    def __init__(self) -> None:
        self.status: int | None = None
        self.keep_alive = True
        self.until_close = False
        self._buffer = b""
        self._remaining = 0  # body (or current chunk, with its CRLF) bytes still to skip
        self._chunked = False
        self._in_chunk = False

    def feed(self, data: bytes) -> bool:
        """Consume ``data``; True once the whole response has arrived."""
        if self.status is None:
            data = self._buffer + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                if len(data) > MAX_HEAD_BYTES:
                    raise ProtocolViolation("response head over 64 KB")
                self._buffer = data
                return False
            self._buffer = b""
            self._read_head(data[:end])
            data = data[end + 4:]
            if self.status is None:  # an interim 1xx response: the real one follows
                return self.feed(data)
        if self.until_close:
            return False
        if not self._chunked:
            self._remaining -= len(data)
            return self._remaining <= 0
        return self._feed_chunks(data)

    def _read_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolViolation(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
        status = int(parts[1])
        if 100 <= status < 200:
            return
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        connection = headers.get("connection", "")
        self.keep_alive = "close" not in connection and (parts[0] == "HTTP/1.1" or "keep-alive" in connection)
        self.status = status
        if status in NO_BODY_STATUSES:
            self._remaining = 0
        elif "chunked" in headers.get("transfer-encoding", ""):
            self._chunked = True
        elif "content-length" in headers:
            try:
                self._remaining = int(headers["content-length"])
            except ValueError:
                raise ProtocolViolation(f"bad Content-Length {headers['content-length']!r}") from None
        else:
            self.until_close, self.keep_alive = True, False

    def _feed_chunks(self, data: bytes) -> bool:
        data = self._buffer + data
        self._buffer = b""
        while True:
            if self._in_chunk:
                if len(data) < self._remaining:
                    self._remaining -= len(data)
                    return False
                data = data[self._remaining:]
                self._in_chunk = False
            line_end = data.find(b"\r\n")
            if line_end < 0:
                self._buffer = data
                return False
            try:
                size = int(data[:line_end].split(b";")[0], 16)
            except ValueError:
                raise ProtocolViolation("bad chunk size") from None
            if size == 0:  # the last chunk, then optional trailers up to an empty line
                trailers = data[line_end:]
                if trailers.startswith(b"\r\n\r\n") or b"\r\n\r\n" in trailers:
                    return True
                self._buffer = data
                return False
            data = data[line_end + 2:]
            self._remaining, self._in_chunk = size + 2, True


class Connection(asyncio.Protocol):
    """One keep-alive connection of the pool, carrying at most one request at a time."""

    def __init__(self, pool: ConnectionPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.request: Request | None = None
        self.reader = ResponseReader()
        self.served = 0
        self.received = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # noqa: D102
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, request: Request, payload: bytes) -> None:
        """Write ``payload`` for ``request``."""
        assert self.transport is not None
        self.request, self.reader, self.received = request, ResponseReader(), False
        self.transport.write(payload)

    def data_received(self, data: bytes) -> None:  # noqa: D102
        request = self.request
        if request is None:  # unsolicited bytes (a server's idle-timeout notice): the connection is spent
            self.abort()
            return
        self.received = True
        try:
            complete = self.reader.feed(data)
        except ProtocolViolation:
            self.request = None
            self.pool.settle(request, "protocol")
            self.abort()
            return
        if complete:
            self.request = None
            self.served += 1
            status = self.reader.status
            assert status is not None
            self.pool.settle(request, status)
            self.pool.release(self, reusable=self.reader.keep_alive)

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: D102
        request, self.request = self.request, None
        self.pool.forget(self)
        if request is None:
            return
        if self.reader.until_close and self.reader.status is not None:
            self.pool.settle(request, self.reader.status)
        elif self.served and not self.received and not request.retried:
            # the server closed an idle keep-alive connection as we reused it: the request never reached it
            request.retried = True
            self.pool.retry(request)
        else:
            self.pool.settle(request, "connection")

    def abort(self) -> None:
        """Drop the connection now (its request, if any, must already be settled)."""
        if self.transport is not None:
            self.transport.abort()


class ConnectionPool:
    """Up to ``limit`` keep-alive connections to one server; requests beyond them wait in arrival order."""

    def __init__(self, host: str, port: int, payload: bytes, limit: int, timeout: float,
                 settled: Callable[[Request, Outcome, float], None]) -> None:
        self.host, self.port, self.payload, self.limit, self.timeout = host, port, payload, limit, timeout
        self._settled = settled
        self._idle: list[Connection] = []  # most recently used last: hot connections stay hot
        self._busy: set[Connection] = set()
        self._waiting: deque[Request] = deque()
        self._open = 0  # connected or connecting
        self._connecting: set[asyncio.Task[None]] = set()

    def submit(self, request: Request) -> None:
        """Send ``request`` on an idle connection, a new one, or queue it until one frees up."""
        if self._settled is _ignore:
            return
        if self._idle:
            connection = self._idle.pop()
            self._busy.add(connection)
            connection.send(request, self.payload)
        elif self._open < self.limit:
            self._connect(request)
        else:
            self._waiting.append(request)

    def retry(self, request: Request) -> None:
        """Send ``request`` again on a fresh connection (a reused one may be closing just as well)."""
        if self._settled is not _ignore:
            self._connect(request)

    def settle(self, request: Request, outcome: Outcome) -> None:
        """Report ``request``'s outcome once, at the time it is known."""
        if not request.done:
            request.done = True
            self._settled(request, outcome, time.monotonic())

    def release(self, connection: Connection, reusable: bool) -> None:
        """Take the next waiting request on ``connection``, or keep it idle (or close it if it cannot be reused)."""
        self._busy.discard(connection)
        if not reusable:
            connection.abort()
            return
        while self._waiting:
            request = self._waiting.popleft()
            if not request.done:
                self._busy.add(connection)
                connection.send(request, self.payload)
                return
        self._idle.append(connection)

    def forget(self, connection: Connection) -> None:
        """A connection closed: drop it and let a waiting request open a replacement."""
        self._open -= 1
        self._busy.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)
        if self._waiting and self._open < self.limit:
            self._connect(self._waiting.popleft())

    async def warm(self, count: int) -> None:
        """Open up to ``count`` idle connections ahead of the schedule (failures are left to the requests)."""
        wanted = min(count, self.limit) - self._open
        results = await asyncio.gather(*(asyncio.wait_for(self._open_connection(), self.timeout)
                                         for _ in range(max(0, wanted))), return_exceptions=True)
        for result in results:
            if isinstance(result, Connection):
                self._idle.append(result)

    def expire(self, now: float) -> None:
        """Settle as ``timeout`` every request older than the timeout; their connections are dropped."""
        oldest = now - self.timeout
        while self._waiting and self._waiting[0].scheduled <= oldest:
            self.settle(self._waiting.popleft(), "timeout")
        for connection in [c for c in self._busy if c.request is not None and c.request.scheduled <= oldest]:
            request, connection.request = connection.request, None
            assert request is not None
            self.settle(request, "timeout")
            self._busy.discard(connection)
            connection.abort()

    def close(self) -> None:
        """Drop every connection and pending connect; outcomes known from now on are no longer reported."""
        self._settled = _ignore
        self._waiting.clear()
        for task in self._connecting:
            task.cancel()
        for connection in [*self._idle, *self._busy]:
            connection.request = None
            connection.abort()

    async def _open_connection(self) -> Connection:
        self._open += 1
        try:
            _, connection = await asyncio.get_running_loop().create_connection(
                lambda: Connection(self), self.host, self.port)
        except BaseException:
            self._open -= 1
            raise
        return connection

    def _connect(self, request: Request) -> None:
        task = asyncio.get_running_loop().create_task(self._connect_and_send(request))
        self._connecting.add(task)
        task.add_done_callback(self._connecting.discard)

    async def _connect_and_send(self, request: Request) -> None:
        try:
            connection = await asyncio.wait_for(self._open_connection(), self.timeout)
        except (TimeoutError, OSError):
            self.settle(request, "connection")
            if self._waiting and self._open < self.limit:
                self._connect(self._waiting.popleft())
            return
        if request.done:  # expired while connecting
            self.release(connection, reusable=True)
            return
        self._busy.add(connection)
        connection.send(request, self.payload)


def _ignore(request: Request, outcome: Outcome, at: float) -> None:
    """Where outcomes go once the pool is closed."""
