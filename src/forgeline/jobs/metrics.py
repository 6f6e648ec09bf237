"""Metrics from logs: every line a job prints is matched against its metric regexes as it streams.

Each match becomes a MetricSample (the first capture group, as a float) kept for the JobResult, and is appended
at once as a JSON line to ``<log path>.metrics.jsonl`` so the series can be read while the job runs.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from forgeline.jobs.spec import MetricDefinition, MetricSample

SERIES_SUFFIX = ".metrics.jsonl"


def metric_series_path(log_path: str) -> str:
    """Where the samples of the job logging to ``log_path`` are appended as they are parsed."""
    return log_path + SERIES_SUFFIX


def read_metric_series(path: str | Path) -> list[MetricSample]:
    """The samples written so far to a series file (a line still being written is skipped)."""
    samples: list[MetricSample] = []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return samples
    for line in text.splitlines():
        try:
            row = json.loads(line)
            samples.append(MetricSample(name=row["name"], value=float(row["value"]),
                                        timestamp=datetime.fromisoformat(row["timestamp"]),
                                        seq=int(row["seq"]), attempt=int(row["attempt"])))
        except (ValueError, KeyError, TypeError):
            continue
    return samples


class MetricRecorder:
    """A log-line callback that records every metric value the job prints, on stdout or stderr, in order.

    ``attempt`` counts the starts of the job's process (a restart after an interruption is attempt 2);
    ``seq`` numbers the samples of the whole job from 1, across attempts.
    """

    def __init__(self, definitions: Sequence[MetricDefinition], series_path: str | None = None) -> None:
        self._patterns = [(d.name, re.compile(d.regex)) for d in definitions]
        self._lock = threading.Lock()
        self._samples: list[MetricSample] = []
        self._series_path = series_path
        self._series: IO[str] | None = None
        self.attempt = 1

    @property
    def samples(self) -> tuple[MetricSample, ...]:
        """Every sample recorded so far."""
        with self._lock:
            return tuple(self._samples)

    def __call__(self, stream: str, line: str) -> None:
        """Match one log line (``stream`` is "stdout" or "stderr"; both count)."""
        for name, pattern in self._patterns:
            match = pattern.search(line)
            if match is None:
                continue
            try:
                value = float(match.group(1))
            except (TypeError, ValueError):  # the group matched text that is not a number, e.g. "1.2.3"
                continue
            self._record(name, value)

    def close(self) -> None:
        """Close the series file."""
        with self._lock:
            if self._series is not None:
                self._series.close()
                self._series = None

    def _record(self, name: str, value: float) -> None:
        with self._lock:
            sample = MetricSample(name=name, value=value, timestamp=datetime.now(UTC),
                                  seq=len(self._samples) + 1, attempt=self.attempt)
            self._samples.append(sample)
            if self._series_path is None:
                return
            if self._series is None:
                Path(self._series_path).parent.mkdir(parents=True, exist_ok=True)
                self._series = open(self._series_path, "a", encoding="utf-8")
            row = {"name": name, "value": value, "timestamp": sample.timestamp.isoformat(),
                   "seq": sample.seq, "attempt": sample.attempt}
            self._series.write(json.dumps(row) + "\n")
            self._series.flush()
