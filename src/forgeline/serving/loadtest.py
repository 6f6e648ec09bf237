"""Open-loop load tests: requests leave on a fixed schedule and latency counts from the scheduled send.

A closed-loop client (send, wait, send again) slows down with the server and so hides the server's queue. Here
request ``i`` of a run at ``rate`` requests per second is due at ``start + i / rate`` whether or not earlier ones
have returned, and its latency is measured from that due time: a request that waits for a free connection, or
in the server's backlog, carries that wait in its latency. A run is bounded: exactly ``rate × duration``
requests, and a hard deadline ``timeout`` seconds after the last one is due; whatever is unanswered by then
counts as a ``timeout`` failure.

    from forgeline.serving.loadtest import LoadTest
    results = LoadTest("http://127.0.0.1:8080/endpoints/risk-de/invocations", body).run_rates([200, 400], 30)
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from forgeline.errors import LoadTestError
from forgeline.serving.load_connections import ConnectionPool, Outcome, Request

DEFAULT_HOST = "127.0.0.1"
SWEEP_SECONDS = 0.05
PAUSE_SECONDS = 1.0  # between rates
WARM_SHARE = 0.01  # connections opened ahead of a run: one per 100 rps of rate
SAFE_HEADER = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True)
class RateResult:
    """What one open-loop run at a fixed rate measured; latencies in ms of successful (2xx) responses."""

    rate: float
    duration: float
    sent: int
    ok: int
    p50_ms: float | None
    p99_ms: float | None
    p999_ms: float | None
    errors: dict[str, int] = field(default_factory=dict)  # failures by status or by "timeout"/"connection"/…
    send_lag_p99_ms: float = 0.0  # how late the generator itself was: a large value means it was the bottleneck

    @property
    def ok_percent(self) -> float:
        """Share of the sent requests answered with a 2xx status, in percent."""
        return 100.0 * self.ok / self.sent if self.sent else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (with ``ok_percent``)."""
        return {"rate": self.rate, "duration": self.duration, "sent": self.sent, "ok": self.ok,
                "ok_percent": round(self.ok_percent, 3), "p50_ms": self.p50_ms, "p99_ms": self.p99_ms,
                "p999_ms": self.p999_ms, "errors": dict(self.errors), "send_lag_p99_ms": self.send_lag_p99_ms}


@dataclass
class Tally:
    """Raw outcomes of one run: latencies of 2xx answers, other outcomes by kind, send lags (seconds)."""

    sent: int = 0
    answered: int = 0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    failures: Counter[str] = field(default_factory=Counter)
    lags: array[float] = field(default_factory=lambda: array("d"))

    def result(self, rate: float, duration: float) -> RateResult:
        """Percentiles and counts."""
        latencies = sorted(self.latencies)
        p50, p99, p999 = (None if not latencies else round(percentile(latencies, q) * 1000, 3)
                          for q in (0.50, 0.99, 0.999))
        lag = percentile(sorted(self.lags), 0.99) if self.lags else 0.0
        return RateResult(rate=rate, duration=duration, sent=self.sent, ok=len(latencies), p50_ms=p50, p99_ms=p99,
                          p999_ms=p999, errors=dict(sorted(self.failures.items())),
                          send_lag_p99_ms=round(lag * 1000, 3))


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of an ascending sequence."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


@dataclass(frozen=True)
class LoadTest:
    """An open-loop load test of one URL with one request body; ``run`` a rate, or ``run_rates`` several.

    ``connections`` bounds the keep-alive connections; requests beyond them wait (their latency still counts from
    their due time). One process is enough: the generator costs about 40-60 µs of CPU per request (some 20 % of a
    core at 3,000 rps); ``RateResult.send_lag_p99_ms`` shows when it falls behind its own schedule.
    """

    url: str = f"http://{DEFAULT_HOST}:8080/"
    body: bytes = b""
    content_type: str = "application/json"
    accept: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 5.0
    connections: int = 256
    method: str = "POST"

    def __post_init__(self) -> None:
        self.target()  # validate now: one clear error before any process starts
        if not self.timeout > 0:
            raise LoadTestError(f"the timeout must be positive, not {self.timeout}")
        if self.connections < 1:
            raise LoadTestError(f"connections must be at least 1, not {self.connections}")

    def target(self) -> tuple[str, int, bytes]:
        """Host, port and the exact bytes of the request, built once."""
        parts = urlsplit(self.url if "://" in self.url else f"http://{self.url}")
        if parts.scheme != "http" or not parts.hostname:
            raise LoadTestError(f"cannot load-test {self.url!r}: give an http://host[:port]/path URL")
        try:
            port = parts.port or 80
        except ValueError:
            raise LoadTestError(f"cannot load-test {self.url!r}: the port is not a number") from None
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname
        lines = [f"{self.method} {path} HTTP/1.1", f"Host: {host if ':' not in host else f'[{host}]'}:{port}",
                 "User-Agent: forgeline-loadtest", f"Content-Length: {len(self.body)}"]
        if self.body or self.method == "POST":
            lines.append(f"Content-Type: {self.content_type}")
        if self.accept:
            lines.append(f"Accept: {self.accept}")
        for name, value in self.headers.items():
            if not name or set(name) - SAFE_HEADER or "\r" in value or "\n" in value:
                raise LoadTestError(f"bad header {name!r}: give it as 'Name: value' on one line")
            lines.append(f"{name}: {value}")
        return host, port, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body

    def run(self, rate: float, duration: float) -> RateResult:
        """Send ``rate × duration`` requests on schedule and measure them (blocks for about ``duration``)."""
        return asyncio.run(self.run_async(rate, duration))

    async def run_async(self, rate: float, duration: float) -> RateResult:
        """``run`` from code that already has an event loop (it stays responsive: sending never blocks it)."""
        if not rate > 0 or not duration > 0:
            raise LoadTestError(f"rate and duration must be positive, not {rate} rps for {duration} s")
        total = round(rate * duration)
        if total < 1:
            raise LoadTestError(f"{rate} rps for {duration} s is less than one request")
        return (await self._drive(rate, total)).result(rate, duration)

    def run_rates(self, rates: Iterable[float], duration: float, pause: float = PAUSE_SECONDS) -> list[RateResult]:
        """``run`` each rate in turn, ``pause`` seconds apart so that one run's backlog does not bleed into the next."""
        return list(self.iter_rates(rates, duration, pause))

    def iter_rates(self, rates: Iterable[float], duration: float,
                   pause: float = PAUSE_SECONDS) -> Iterator[RateResult]:
        """Like ``run_rates``, yielding each rate's result as soon as it is measured."""
        for index, rate in enumerate(rates):
            if index and pause > 0:
                time.sleep(pause)
            yield self.run(rate, duration)

    async def _drive(self, rate: float, total: int) -> Tally:
        """Send ``total`` requests at ``rate`` and wait for their answers, at most until the hard deadline."""
        host, port, payload = self.target()
        tally = Tally()
        everything = asyncio.get_running_loop().create_future()

        def settled(request: Request, outcome: Outcome, now: float) -> None:
            if isinstance(outcome, int) and 200 <= outcome < 300:
                tally.latencies.append(now - request.scheduled)
            else:
                tally.failures[str(outcome)] += 1
            tally.answered += 1
            if tally.answered == total and not everything.done():
                everything.set_result(None)

        pool = ConnectionPool(host, port, payload, self.connections, self.timeout, settled)
        await pool.warm(max(1, math.ceil(rate * WARM_SHARE)))
        start = time.monotonic() + SWEEP_SECONDS
        sweeper = asyncio.ensure_future(self._sweep(pool))
        try:
            await self._schedule(pool, tally, start, rate, total)
            last_due = start + (total - 1) / rate
            try:
                await asyncio.wait_for(asyncio.shield(everything), max(0.0, last_due + self.timeout - time.monotonic()))
            except TimeoutError:
                pass
        finally:
            sweeper.cancel()
            pool.close()
        if tally.answered < tally.sent:  # past the hard deadline: unanswered requests are failures
            tally.failures["timeout"] += tally.sent - tally.answered
            tally.answered = tally.sent
        return tally

    async def _schedule(self, pool: ConnectionPool, tally: Tally, start: float, rate: float, total: int) -> None:
        """Submit every request at its due time (late ones at once, with their original due time)."""
        index = 0
        while index < total:
            now = time.monotonic()
            due = start + index / rate
            if due > now:
                await asyncio.sleep(due - now)
                continue
            while index < total and (due := start + index / rate) <= now:
                tally.sent += 1
                tally.lags.append(now - due)
                pool.submit(Request(due))
                index += 1
            await asyncio.sleep(0)  # let responses in between bursts of late sends

    async def _sweep(self, pool: ConnectionPool) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            pool.expire(time.monotonic())
