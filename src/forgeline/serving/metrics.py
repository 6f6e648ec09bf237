"""Prometheus metrics of a server: per endpoint and variant requests, errors by status, latency, batches, queues.

Every server has its own registry (no process-wide state). Queue depth, workers and batch sizes are read from
the pools when ``/metrics`` is scraped, so the request path only counts and observes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from forgeline.serving.pool import BATCH_BUCKETS, WorkerPool
from forgeline.serving.recent_traffic import RecentTraffic

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

PoolsView = Callable[[], Iterable[tuple[str, str, WorkerPool]]]
"""(endpoint, variant, pool) of every variant a server hosts."""


class ServingMetrics:
    """Counters and histograms of the request path, and gauges read from the pools."""

    def __init__(self, pools: PoolsView) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("forgeline_endpoint_requests", "Invocations answered, by status code.",
                                ["endpoint", "variant", "status"], registry=self.registry)
        self.errors = Counter("forgeline_endpoint_errors", "Invocations answered with a 4xx or 5xx status.",
                              ["endpoint", "variant", "status"], registry=self.registry)
        self.latency = Histogram("forgeline_endpoint_latency_seconds", "Time from request to response.",
                                 ["endpoint", "variant"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.registry.register(_PoolCollector(pools))
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self.recent = RecentTraffic()  # the last minute, for GET /endpoints

    def observe(self, endpoint: str, variant: str, status: int, seconds: float) -> None:
        """Count one answered invocation (the variant is "" when none was chosen)."""
        key = (endpoint, variant, status)
        children = self._children.get(key)
        if children is None:
            code = str(status)
            children = (self.requests.labels(endpoint, variant, code),
                        self.errors.labels(endpoint, variant, code) if status >= 400 else None,
                        self.latency.labels(endpoint, variant))
            self._children[key] = children
        children[0].inc()
        if children[1] is not None:
            children[1].inc()
        children[2].observe(seconds)
        self.recent.observe(endpoint, variant, status, seconds)

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)


class _PoolCollector(Collector):
    """Queue depth, workers and batch sizes of every pool, collected on scrape."""

    def __init__(self, pools: PoolsView) -> None:
        self.pools = pools

    def collect(self) -> Iterable[Any]:
        """Gauges and the batch size histogram, from each pool's current state."""
        depth = GaugeMetricFamily("forgeline_endpoint_queue_depth", "Requests waiting for a worker.",
                                  labels=["endpoint", "variant"])
        workers = GaugeMetricFamily("forgeline_endpoint_workers", "Worker processes serving.",
                                    labels=["endpoint", "variant"])
        batches = HistogramMetricFamily("forgeline_endpoint_batch_size", "Requests per batch sent to a worker.",
                                        labels=["endpoint", "variant"])
        for endpoint, variant, pool in self.pools():
            labels = [endpoint, variant]
            depth.add_metric(labels, len(pool.queue))
            workers.add_metric(labels, sum(1 for w in pool.workers if w.ready))
            cumulative = list(itertools.accumulate(pool.batch_buckets))
            buckets = [(str(float(bound)), float(cumulative[p])) for p, bound in enumerate(BATCH_BUCKETS)]
            buckets.append(("+Inf", float(cumulative[-1])))
            batches.add_metric(labels, buckets, float(pool.batch_total))
        yield depth
        yield workers
        yield batches
