"""Recent traffic of a server's endpoints: requests, errors and latency percentiles over the last minute.

Each (endpoint, variant) keeps one slot per second of the window: a request count, an error count and a latency
histogram with four buckets per doubling (50 µs to about half an hour), so a percentile is off by at most 9 %. The
request path only indexes a slot and counts; sums and percentiles are computed when someone asks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from typing import Any

WINDOW_SECONDS = 60
FLOOR_SECONDS = 50e-6
BUCKETS_PER_DOUBLING = 4
BUCKETS = 128


class _Slot:
    """One second of one variant's traffic."""

    __slots__ = ("second", "requests", "errors", "latency")

    def __init__(self, second: int) -> None:
        self.second = second
        self.requests = 0
        self.errors = 0
        self.latency = [0] * BUCKETS


def bucket_of(seconds: float) -> int:
    """The latency bucket of a duration."""
    if seconds <= FLOOR_SECONDS:
        return 0
    return min(BUCKETS - 1, int(math.log2(seconds / FLOOR_SECONDS) * BUCKETS_PER_DOUBLING))


def bucket_seconds(index: int) -> float:
    """A representative duration of a bucket: the geometric middle of its bounds."""
    return float(FLOOR_SECONDS * 2 ** ((index + 0.5) / BUCKETS_PER_DOUBLING))


class RecentTraffic:
    """Per endpoint and variant: the last minute's requests, errors and latency histogram, by second."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since = clock()
        self._slots: dict[tuple[str, str], list[_Slot]] = {}

    def observe(self, endpoint: str, variant: str, status: int, seconds: float) -> None:
        """Count one answered invocation (the variant is "" when none was chosen)."""
        second = int(self._clock())
        ring = self._slots.get((endpoint, variant))
        if ring is None:
            ring = self._slots[(endpoint, variant)] = [_Slot(-1) for _ in range(WINDOW_SECONDS)]
        slot = ring[second % WINDOW_SECONDS]
        if slot.second != second:
            slot = ring[second % WINDOW_SECONDS] = _Slot(second)
        slot.requests += 1
        if status >= 400:
            slot.errors += 1
        slot.latency[bucket_of(seconds)] += 1

    def summary(self, endpoint: str, variants: Iterable[str] = ()) -> dict[str, Any]:
        """The endpoint's figures over the window, in total and by variant (``variants`` and any with traffic)."""
        now = self._clock()
        oldest = int(now) - WINDOW_SECONDS + 1
        span = max(1.0, min(float(WINDOW_SECONDS), now - self._since))
        total = _Figures()
        by_variant = {name: _Figures() for name in variants}
        for (name, variant), ring in list(self._slots.items()):
            if name != endpoint:
                continue
            figures = by_variant.setdefault(variant, _Figures()) if variant else _Figures()
            for slot in ring:
                if slot.second >= oldest:
                    figures.add(slot)
                    total.add(slot)
        return {**total.as_json(span), "variants": {name: f.as_json(span) for name, f in by_variant.items()}}


class _Figures:
    """Sums of slots: requests, errors and the merged latency histogram."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.latency = [0] * BUCKETS

    def add(self, slot: _Slot) -> None:
        self.requests += slot.requests
        self.errors += slot.errors
        self.latency = [a + b for a, b in zip(self.latency, slot.latency, strict=True)]

    def percentile_ms(self, share: float) -> float | None:
        """The latency below which ``share`` of the requests fall, in milliseconds (None without requests)."""
        if not self.requests:
            return None
        rank, seen = share * self.requests, 0
        for index, count in enumerate(self.latency):
            seen += count
            if seen >= rank and count:
                return round(bucket_seconds(index) * 1000, 3)
        return round(bucket_seconds(BUCKETS - 1) * 1000, 3)

    def as_json(self, span: float) -> dict[str, Any]:
        return {"window_seconds": WINDOW_SECONDS, "requests": self.requests, "errors": self.errors,
                "requests_per_second": round(self.requests / span, 3),
                "p50_ms": self.percentile_ms(0.5), "p99_ms": self.percentile_ms(0.99)}
